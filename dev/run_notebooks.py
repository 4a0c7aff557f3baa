"""Run course notebooks in a plain Jupyter kernel, as Colab or Kaggle would: no nbdev, one work folder.

    python dev/run_notebooks.py nbs/00_export.ipynb nbs/02_clean.ipynb    # run, report, exit 1 on error
    python dev/run_notebooks.py --store nbs/0*.ipynb                       # ... and keep the outputs

The notebooks run in the order given, in a fresh folder, sharing one work folder (`CHATFT_WORK=work`),
so each reads what the one before it wrote, as a learner's run does. Cells a CPU runtime cannot run
(`#| gpu`), cells that never run (`#| eval: false`) and, unless `--slow`, `#| slow` cells are skipped.
CI runs it with the Python of a bare venv (torch, ipykernel, nbclient) and `COLAB_RELEASE_TAG` set, so
each notebook's setup cell must install chatft and everything else the notebook imports.

`--store` writes the outputs back into the notebooks for the docs and GitHub (run `nbdev-clean` after).
Outputs that show a local path or make a notebook's outputs larger than 1 MB are refused.
"""
import argparse, json, os, re, sys, tempfile, time
from pathlib import Path
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

MAX_OUTPUT_BYTES = 1_000_000
LOCAL_PATH = re.compile(r"(?:/tmp/|/root/|/home/|/Users/|/work/|/private/var/|/content/)[^\s\"'\\]*")

def skipped(cell, slow:bool)->bool:
    "Whether a CPU kernel leaves this cell out."
    flags = r"gpu|eval:\s*false" + ("" if slow else "|slow")
    return cell.cell_type == "code" and re.search(rf"^#\|\s*(?:{flags})\s*$", cell.source, re.M) is not None

def execute(nb, cwd:Path, slow:bool):
    "Run the notebook's cells in a fresh kernel in `cwd`; skipped cells are left with no outputs."
    for c in nb.cells:
        if skipped(c, slow): c.outputs, c.execution_count = [], None
    run = nbformat.v4.new_notebook(cells=[c for c in nb.cells if not skipped(c, slow)], metadata=nb.metadata)
    NotebookClient(run, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()

def output_problems(nb)->list:
    "Local paths in outputs, and outputs too large to publish."
    outs = [(i, json.dumps(c.get("outputs", []))) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    found = [f"cell {i}: {m.group(0)[:60]}" for i, t in outs for m in [LOCAL_PATH.search(t)] if m]
    size = sum(len(t) for _, t in outs)
    if size > MAX_OUTPUT_BYTES: found.append(f"outputs are {size/1e6:.1f} MB (limit {MAX_OUTPUT_BYTES/1e6:.0f} MB)")
    return found

def run_one(path:Path, cwd:Path, store:bool, slow:bool)->bool:
    "Run one notebook; store its outputs if asked and fit to publish. True when it all worked."
    nb, start = nbformat.read(path, as_version=4), time.time()
    try: execute(nb, cwd, slow)
    except CellExecutionError as e:
        print(f"{path}: FAILED\n{str(e)[-3000:]}")
        return False
    problems = output_problems(nb) if store else []
    if problems: print(f"{path}: outputs not stored:\n  " + "\n  ".join(problems[:10]))
    elif store: nbformat.write(nb, path)
    print(f"{path}: ran in {time.time()-start:.0f} s" + (", outputs stored" if store and not problems else ""))
    return not problems

def main(argv=None)->int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("notebooks", nargs="+", type=Path)
    p.add_argument("--store", action="store_true", help="write the outputs back into the notebooks")
    p.add_argument("--slow", action="store_true", help="run `#| slow` cells too")
    p.add_argument("--dir", type=Path, help="run in this folder (to go on from an earlier run's work folder)")
    args = p.parse_args(argv)
    cwd = args.dir or Path(tempfile.mkdtemp(prefix="chatft-course-"))
    cwd.mkdir(parents=True, exist_ok=True)
    os.environ["CHATFT_WORK"] = "work"
    if args.store: os.environ["CHATFT_WIDGETS"] = "0"   # static output: stored widgets need a live kernel to show
    results = [run_one(path.resolve(), cwd, args.store, args.slow) for path in args.notebooks]
    return 0 if all(results) else 1

if __name__ == "__main__": sys.exit(main())
