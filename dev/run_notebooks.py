"""Run course notebooks in a plain Jupyter kernel, as Colab or Kaggle would: no nbdev, one work folder.

    python dev/run_notebooks.py nbs/00_export.ipynb nbs/02_clean.ipynb    # run, report, exit 1 on error
    python dev/run_notebooks.py --store nbs/0*.ipynb                       # ... and keep the outputs
    python dev/run_notebooks.py --runtime kaggle --all-cells --fresh nbs/0*.ipynb   # a learner's Run all, badge by badge
    python dev/run_notebooks.py --profile t4 --set MINUTES=0.2 nbs/05_train.ipynb   # the plan's cells as on a T4

By default the notebooks run in the order given, in a fresh folder, sharing one work folder (`CHATFT_WORK=work`),
so each reads what the one before it wrote, as a learner's run does. Cells a CPU runtime cannot run (`#| gpu`),
cells that never run (`#| eval: false`) and, unless `--slow`, `#| slow` cells are skipped. CI runs it with the
Python of a bare venv (torch, ipykernel, nbclient) and `COLAB_RELEASE_TAG` set, so each notebook's setup cell must
install chatft and everything else the notebook imports.

The learner's world (what a Colab or Kaggle badge opens):
- `--runtime colab`: `COLAB_RELEASE_TAG` is set and a stand-in `google.colab` package (modules `files`, `drive`,
  `userdata`) is importable and imported when the kernel starts, as on Colab (`"google.colab" in sys.modules`).
  Its functions raise `NoLearnerHere` naming the line that called them: no learner answers an upload dialog, a
  Drive mount or a secrets prompt in CI, so a cell that calls them when its parameter (`UPLOAD`, `WORK_ON_DRIVE`,
  `PUSH`, ...) does not ask fails.
- `--runtime kaggle`: `KAGGLE_KERNEL_RUN_TYPE=Interactive` and no `google.colab` to import.
- `--all-cells`: Colab's and Kaggle's Run all: nbdev flags are plain comments there, so every cell runs
  (`#| gpu`, `#| slow` and `#| eval: false` included).
- `--fresh`: each notebook in its own new, empty folder with the default work folder `work/` (`CHATFT_WORK`
  unset), as a notebook opened from its badge starts.
- `--set NAME=VALUE` (repeatable): a cell injected right after the notebook's parameter cell (the code cell after
  the markdown `## Parameters`) sets NAME to VALUE (a Python literal; anything else is taken as a string) when
  the parameter cell assigns NAME; other names are left out for that notebook. CI uses it to keep runs quick.
- `--expect TEXT` (repeatable): a notebook whose outputs never contain TEXT fails. CI gives the Kaggle run a learner's
  export (`--set EXPORT=...`) and expects every notebook to say it uses "your export".
- `--profile t4`: plan as if on a T4 without one: `CHATFT_HARDWARE=t4` makes `chatft.train.detect_hardware()`
  return `HARDWARE["t4"]` (planning only; the device is not changed, and `train` refuses a CUDA plan here). Each
  notebook runs up to, not including, its first cell that trains: the first code cell that calls one of
  `TRAINING_CALLS` outside a function or class body. So the cells that depend on the plan are checked under a
  T4's plan.

`--store` writes the outputs back into the notebooks for the docs and GitHub (run `nbdev-clean` after). Outputs
that show a local path or make a notebook's outputs larger than 1 MB are refused. Injected cells are never stored.
"""
import argparse, ast, json, os, re, shutil, sys, tempfile, time
from pathlib import Path
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from traitlets.config import Config

MAX_OUTPUT_BYTES = 1_000_000
LOCAL_PATH = re.compile(r"(?:/tmp/|/root/|/home/|/Users/|/work/|/private/var/|/content/)[^\s\"'\\]*")
ANSI = re.compile(r"\x1b\[[0-9;]*m")   # the colours of IPython's tracebacks
TRAINING_CALLS = {"train", "train_dpo", "course_run", "demo_cli", "practice_run", "demo_run", "update"}
RUNTIMES = {"colab": {"COLAB_RELEASE_TAG": "ci"}, "kaggle": {"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}}
INJECTED = "dev/run_notebooks.py"   # the first line of every cell the runner adds names it

def skipped(cell, slow:bool, all_cells:bool=False)->bool:
    "Whether a CPU kernel leaves this cell out (never with `all_cells`: Colab's Run all)."
    flags = r"gpu|eval:\s*false" + ("" if slow else "|slow")
    if all_cells or cell.cell_type != "code": return False
    return re.search(rf"^#\|\s*(?:{flags})\s*$", cell.source, re.M) is not None

def code_ast(source:str)->ast.Module|None:
    "A code cell's syntax tree, its IPython magics (`%...`) and shell lines (`!...`) left out; None if it does not parse."
    try: return ast.parse("\n".join("" if l.lstrip().startswith(("%", "!")) else l for l in source.splitlines()))
    except SyntaxError: return None

def _top_level(tree):
    "The nodes of `tree` that run when the cell runs: function, lambda and class bodies left out."
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        todo += [n for n in ast.iter_child_nodes(node)
                 if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef))]

def trains(cell)->bool:
    "Does this code cell call one of `TRAINING_CALLS` (as `name(...)` or `x.name(...)`) when it runs?"
    tree = code_ast(cell.source) if cell.cell_type == "code" else None
    if tree is None: return False
    called = lambda f: f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
    return any(isinstance(n, ast.Call) and called(n.func) in TRAINING_CALLS for n in _top_level(tree))

def parameter_cell(nb)->int|None:
    "The index of the notebook's parameter cell: the code cell right after the markdown `## Parameters`."
    for i, c in enumerate(nb.cells[:-1]):
        if c.cell_type == "markdown" and c.source.lstrip().startswith("## Parameters") and nb.cells[i+1].cell_type == "code":
            return i + 1
    return None

def parameter_names(source:str)->list:
    "The names a parameter cell assigns."
    tree = code_ast(source)
    return [t.id for n in (tree.body if tree else []) if isinstance(n, (ast.Assign, ast.AnnAssign))
            for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)]

def parse_sets(items:list)->dict:
    "`NAME=VALUE` strings as {NAME: Python source of VALUE} (a literal as given, anything else as a string)."
    out = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.isidentifier(): raise SystemExit(f"--set {item!r}: write NAME=VALUE, e.g. --set MINUTES=0.2")
        try: ast.literal_eval(value); out[name] = value
        except (ValueError, SyntaxError): out[name] = repr(value)
    return out

def override_cell(nb, sets:dict):
    "(index of the parameter cell, a cell setting those of `sets` it assigns, their names); (None, None, []) if none."
    at = parameter_cell(nb)
    names = [n for n in sets if at is not None and n in parameter_names(nb.cells[at].source)]
    if not names: return None, None, []
    src = f"# {INJECTED} --set: CI's values for these parameters\n" + "\n".join(f"{n} = {sets[n]}" for n in names)
    return at, nbformat.v4.new_code_cell(src), names

STUB = '''"""A stand-in for Colab's `google.colab`, written by dev/run_notebooks.py --runtime colab.
No learner answers an upload dialog, a Drive mount or a secrets prompt in CI: every function here raises."""
import inspect

class NoLearnerHere(RuntimeError): "A cell called a google.colab function that needs a learner, in CI."

def _refuse(name):
    def called(*args, **kwargs):
        frame = inspect.stack()[1]
        line = (frame.code_context or ["?"])[0].strip()
        raise NoLearnerHere(f"google.colab.{name}() called by `{line}` in CI's simulated Colab, where no learner answers: "
                            "run a cell that asks the learner only when its parameter asks (UPLOAD, WORK_ON_DRIVE, PUSH, ...).")
    return called
'''
STUB_MODULE = '''"""google.colab.{0} stand-in (dev/run_notebooks.py --runtime colab): every function raises NoLearnerHere."""
from google.colab import _refuse
{1}
def __getattr__(name):
    if name.startswith("__"): raise AttributeError(name)
    return _refuse("{0}." + name)
'''
STUB_FUNCTIONS = {"files": ["upload", "download"], "drive": ["mount", "flush_and_unmount"], "userdata": ["get"]}

def colab_stub(folder:Path)->Path:
    "Write the stand-in `google.colab` into `folder` (`google` stays a namespace package, so `google.protobuf` still imports)."
    pkg = folder/"google"/"colab"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg/"__init__.py").write_text(STUB)
    for mod, fns in STUB_FUNCTIONS.items():
        (pkg/f"{mod}.py").write_text(STUB_MODULE.format(mod, "".join(f'{f} = _refuse("{mod}.{f}")\n' for f in fns)))
    return folder

def kernel_env(runtime:str|None, profile:str|None, fresh:bool, stub:Path|None)->dict:
    "The environment the notebook's kernel starts with: this one, changed for the runtime, the profile and --fresh."
    env = {k: v for k, v in os.environ.items() if not runtime or k not in ("COLAB_RELEASE_TAG", "KAGGLE_KERNEL_RUN_TYPE")}
    env.update(RUNTIMES.get(runtime, {}))
    if stub: env["PYTHONPATH"] = os.pathsep.join([str(stub), *filter(None, [env.get("PYTHONPATH")])])
    if profile: env["CHATFT_HARDWARE"] = profile
    if fresh: env.pop("CHATFT_WORK", None)
    else: env["CHATFT_WORK"] = "work"
    return env

def _index(cells:list, cell)->int|None:
    "The position of this very cell in `cells` (cells with the same content are still different cells)."
    return next((i for i, c in enumerate(cells) if c is cell), None)

def cells_to_run(nb, slow:bool, all_cells:bool, sets:dict, profile:str|None, runtime:str|None)->tuple:
    "(the cells to execute, in order, injected ones included; notes on what was changed or left out)."
    keep, notes = [c for c in nb.cells if not skipped(c, slow, all_cells)], []
    if profile:
        first = next((i for i, c in enumerate(keep) if trains(c)), None)
        if first is not None:
            notes.append(f"--profile {profile}: stopped before cell {_index(nb.cells, keep[first])}, the first that trains")
            keep = keep[:first]
    at, cell, names = override_cell(nb, sets)
    if cell is not None and _index(keep, nb.cells[at]) is not None:
        keep.insert(_index(keep, nb.cells[at]) + 1, cell)
        notes.append("--set " + ", ".join(f"{n}={sets[n]}" for n in names))
    if runtime == "colab": keep.insert(0, nbformat.v4.new_code_cell(f"# {INJECTED}: Colab imports it at start\nimport google.colab"))
    return keep, notes

def failed_cell(nb, cells)->str:
    "Which cell failed and how, in one line: 'cell 9 (ModuleNotFoundError: No module named ...)'."
    for c in cells:
        err = next((o for o in c.get("outputs", []) if o.get("output_type") == "error"), None)
        if err is None: continue
        i = _index(nb.cells, c)
        where = f"cell {i}" if i is not None else "an injected cell: " + c.source.splitlines()[0]
        value = " ".join(str(err.get("evalue", "")).split())[:300]
        return f"{where} ({err.get('ename')}: {value})"
    return "a cell (no error output)"

def execute(nb, cwd:Path, slow:bool, all_cells:bool=False, sets:dict|None=None, profile:str|None=None,
            runtime:str|None=None, fresh:bool=False, stub:Path|None=None, timings:list|None=None)->tuple:
    "Run the notebook's cells in a fresh kernel in `cwd`; skipped cells are left with no outputs. (error line or None, notes)"
    for c in nb.cells:
        if skipped(c, slow, all_cells): c.outputs, c.execution_count = [], None
    cells, notes = cells_to_run(nb, slow, all_cells, sets or {}, profile, runtime)
    run = nbformat.v4.new_notebook(cells=cells, metadata=nb.metadata)
    # the kernel talks over local sockets (files), not TCP ports: no port another process can take between choosing and binding
    sockets = Path(tempfile.mkdtemp(prefix="chatft-kernel-"))
    ipc = Config({"KernelManager": {"transport": "ipc", "ip": str(sockets/"kernel")}})
    client = NotebookClient(run, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}, config=ipc)
    try: client.execute(env=kernel_env(runtime, profile, fresh, stub))
    except CellExecutionError as e: error = f"{failed_cell(nb, cells)}\n{ANSI.sub('', str(e))[-3000:]}"
    else: error = None
    finally: shutil.rmtree(sockets, ignore_errors=True)
    if timings is not None: timings += slowest(nb, cells)
    return error, notes

def slowest(nb, cells, n:int=3)->list:
    "A note naming the `n` cells that took longest, from the timings nbclient records: ['slowest: cell 53 41 s, ...']."
    from datetime import datetime
    took = []
    for c in cells:
        t = c.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in t and "shell.execute_reply" in t:
            secs = (datetime.fromisoformat(t["shell.execute_reply"].replace("Z", "+00:00"))
                    - datetime.fromisoformat(t["iopub.execute_input"].replace("Z", "+00:00"))).total_seconds()
            i = _index(nb.cells, c)
            took.append((secs, "setup" if i == 0 else f"cell {i}" if i is not None else "an injected cell"))
        c.get("metadata", {}).pop("execution", None)        # not stored
    return ["slowest: " + ", ".join(f"{w} {s:.0f} s" for s, w in sorted(took, reverse=True)[:n])] if took else []

def output_problems(nb)->list:
    "Local paths in outputs, and outputs too large to publish."
    outs = [(i, json.dumps(c.get("outputs", []))) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    found = [f"cell {i}: {m.group(0)[:60]}" for i, t in outs for m in [LOCAL_PATH.search(t)] if m]
    size = sum(len(t) for _, t in outs)
    if size > MAX_OUTPUT_BYTES: found.append(f"outputs are {size/1e6:.1f} MB (limit {MAX_OUTPUT_BYTES/1e6:.0f} MB)")
    return found

def missing_expected(nb, texts:list)->list:
    "Those of `texts` that no output of `nb` contains (CI: a notebook given EXPORT must say it uses 'your export')."
    said = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []))
    return [t for t in texts if t not in said]

def join_streams(nb):
    "Join each run of stream outputs of the same name into one: a streamed reply is one text, not a block per token."
    for c in nb.cells:
        if c.cell_type != "code": continue
        outs = []
        for o in c.get("outputs", []):
            if o.get("output_type") == "stream" and outs and outs[-1].get("output_type") == "stream" and outs[-1].get("name") == o.get("name"):
                outs[-1]["text"] = outs[-1]["text"] + o["text"]
            else: outs.append(o)
        c.outputs = outs

def run_one(path:Path, cwd:Path, store:bool, slow:bool, expect:list=(), **how)->str|None:
    "Run one notebook; store its outputs if asked and fit to publish. None when it all worked, else what went wrong."
    nb, start = nbformat.read(path, as_version=4), time.time()
    timings = []
    error, notes = execute(nb, cwd, slow, timings=timings, **how)
    took = f"{time.time()-start:.0f} s" + "".join(f"; {n}" for n in notes + timings)
    if error is None and (missing := missing_expected(nb, expect)):
        error = f"the outputs never say {missing[0]!r} (--expect)"
    setup = next((c for c in nb.cells if c.cell_type == "code"), None)   # what the setup cell installed, for the log
    said = "".join(o.get("text", "") for o in (setup.get("outputs", []) if setup else []) if o.get("output_type") == "stream")
    if said.strip(): print(f"{path.name} setup cell:\n  " + "\n  ".join(said.strip().splitlines()[-12:]))
    if error:
        print(f"{path}: FAILED after {took} at {error}", flush=True)
        return error.splitlines()[0]
    if store: join_streams(nb)
    problems = output_problems(nb) if store else []
    if problems: print(f"{path}: outputs not stored:\n  " + "\n  ".join(problems[:10]))
    elif store: nbformat.write(nb, path)
    print(f"{path}: ran in {took}" + (", outputs stored" if store and not problems else ""), flush=True)
    return "outputs not stored: " + problems[0] if problems else None

def main(argv=None)->int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("notebooks", nargs="+", type=Path)
    p.add_argument("--store", action="store_true", help="write the outputs back into the notebooks")
    p.add_argument("--slow", action="store_true", help="run `#| slow` cells too")
    p.add_argument("--dir", type=Path, help="run in this folder (to go on from an earlier run's work folder)")
    p.add_argument("--runtime", choices=sorted(RUNTIMES), help="simulate Colab (a google.colab stand-in) or Kaggle")
    p.add_argument("--all-cells", action="store_true", help="run every cell, nbdev flags ignored (Colab's Run all)")
    p.add_argument("--fresh", action="store_true", help="each notebook in its own new folder and work folder")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override a parameter (repeatable)")
    p.add_argument("--expect", action="append", default=[], metavar="TEXT", help="fail a notebook whose outputs never contain TEXT")
    p.add_argument("--profile", help="plan as on this chatft.train.HARDWARE key (e.g. t4); stop before the first cell that trains")
    args = p.parse_args(argv)
    base = args.dir or Path(tempfile.mkdtemp(prefix="chatft-course-"))
    base.mkdir(parents=True, exist_ok=True)
    if args.store: os.environ["CHATFT_WIDGETS"] = "0"   # static output: stored widgets need a live kernel to show
    stub = colab_stub(Path(tempfile.mkdtemp(prefix="chatft-colab-stub-"))) if args.runtime == "colab" else None
    how = dict(all_cells=args.all_cells, sets=parse_sets(args.set), profile=args.profile, runtime=args.runtime,
               fresh=args.fresh, stub=stub)
    results = {}
    try:
        for path in args.notebooks:
            cwd = Path(tempfile.mkdtemp(prefix=f"{path.stem}-", dir=base)) if args.fresh else base
            results[path] = run_one(path.resolve(), cwd, args.store, args.slow, args.expect, **how)
    finally:
        if stub: shutil.rmtree(stub, ignore_errors=True)
    # a folder this script made is removed when everything passed, kept to look into when something failed
    if not args.dir and all(e is None for e in results.values()): shutil.rmtree(base, ignore_errors=True)
    elif not args.dir: print(f"the notebooks ran in {base}")
    if len(results) > 1:
        flags = " ".join(a for a in (sys.argv[1:] if argv is None else argv) if not a.endswith(".ipynb"))
        print(f"\nSummary{f' ({flags})' if flags else ''}:")
        for path, error in results.items(): print(f"  {path.name}: {'ok' if error is None else 'FAILED at ' + error}")
    return 0 if all(e is None for e in results.values()) else 1

if __name__ == "__main__": sys.exit(main())
