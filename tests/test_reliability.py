"""Every command that reads a run, on damaged run folders: `chatft eval`, `chat -m`, `merge`, `gguf`, `serve` and
`push --dry-run` each end with exit code 1 and one line on stderr naming the folder or file and what to do, never a
traceback, and leave nothing at their output path (nor a `.part` beside it).

The damages: plan.json missing, empty, not JSON, not an object, without its fields; the adapter's weights missing or
not safetensors; adapter_config.json, tokenizer.json or tokenizer_config.json not JSON; the chat template missing; a
plan naming another model than the adapter was trained on; a system prompt that is not UTF-8; a prepared dataset
given as a run; a folder that does not exist. The commands run in this process through `chatft.cli.main`, as the
console script runs them (an exception escaping `main` would be the traceback a user sees)."""
import os, io, re, json, shutil, signal, contextlib
from pathlib import Path
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
from chatft.cli import main
from chatft.models import TINY_MODEL, DEMO_MODEL
from chatft.chat import practice_run

def _write(rel, data):
    def f(d): (d/rel).write_bytes(data) if isinstance(data, bytes) else (d/rel).write_text(data)
    return f

def _remove(rel):
    def f(d): (d/rel).unlink()
    return f

def _other_model(d):
    plan = json.loads((d/"plan.json").read_text())
    (d/"plan.json").write_text(json.dumps(dict(plan, model="chatft/tiny-random-llama2")))

def _dataset(d):
    data = d.parent/(d.name + "-data")
    shutil.copytree(d/"data", data)
    shutil.rmtree(d)
    data.rename(d)

DAMAGES = {"plan missing": _remove("plan.json"), "plan empty": _write("plan.json", ""),
           "plan not json": _write("plan.json", "{not json"), "plan a list": _write("plan.json", "[1]"),
           "plan without fields": _write("plan.json", '{"model": 5}'),
           "weights missing": _remove("adapter_model.safetensors"),
           "weights not safetensors": _write("adapter_model.safetensors", b"\0" * 64),
           "adapter config not json": _write("adapter_config.json", "{"),
           "tokenizer not json": _write("tokenizer.json", "{"), "tokenizer config not json": _write("tokenizer_config.json", "]"),
           "template missing": _remove("chat_template.jinja"), "another model's plan": _other_model,
           "system prompt not utf-8": _write("system.txt", b"\xff\xfe\0"), "a prepared dataset": _dataset,
           "no such folder": lambda d: shutil.rmtree(d)}
COMMANDS = {"eval": lambda r, o: ["eval", r, "--n", "1", "--max-new-tokens", "2", "-o", o],
            "chat": lambda r, o: ["chat", r, "-m", "hi", "--max-new-tokens", "2"],
            "merge": lambda r, o: ["merge", r, "-o", o],
            "gguf": lambda r, o: ["gguf", r, "-o", f"{o}.gguf"],
            "serve": lambda r, o: ["serve", r, "--port", "0"],     # it must refuse before it serves
            "push": lambda r, o: ["push", r, "me/model", "--dry-run", "-o", o]}
# what a command never reads: the command runs (exit 0) and is not asked to fail
WHAT_TO_DO = ("train", "make one", "restore", "delete", "give")
NOT_READ = {("system prompt not utf-8", "eval"), ("another model's plan", "push")}   # push checks files, not shapes

@contextlib.contextmanager
def _at_most(seconds:int):
    "A command that serves (or hangs) instead of refusing fails the test after `seconds`, instead of hanging it."
    def late(*_): raise TimeoutError(f"still running after {seconds} s: it did not refuse the damaged run")
    before = signal.signal(signal.SIGALRM, late)
    signal.alarm(seconds)
    try: yield
    finally: signal.alarm(0); signal.signal(signal.SIGALRM, before)

@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    "A TINY_MODEL run with a held-out split and a system prompt (one training step)."
    run = practice_run(tmp_path_factory.mktemp("good")/"run", TINY_MODEL, steps=1, n=24, max_length=128)
    (run/"system.txt").write_text("Be brief.")
    return run

@pytest.mark.parametrize("damage", DAMAGES)
def test_every_command_on_a_damaged_run_is_one_line(good_run, tmp_path, damage):
    run = tmp_path/"run"
    shutil.copytree(good_run, run)
    DAMAGES[damage](run)
    rows = []
    for name, args in COMMANDS.items():
        if (damage, name) in NOT_READ: continue
        out, err = tmp_path/f"out-{name}", io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                with _at_most(300): rc = main([str(a) for a in args(run, out)])  # an exception here is a traceback
            except BaseException: ROWS.append((name, damage, "traceback")); raise
        lines = err.getvalue().strip().splitlines()
        left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("out-", ".out-")))
        rows.append((name, rc, lines[-1][:160] if lines else "", left))
        good = rc == 1 and len(lines) == 1 and lines[0].startswith(f"chatft {name}: error: ") and str(run) in lines[0]
        ROWS.append((name, damage, "read silently" if rc == 0 else "leftover" if left else "one line" if good else "message short"))
        assert rc == 1 and len(lines) == 1 and lines[0].startswith(f"chatft {name}: error: "), rows[-1]
        assert str(run) in lines[0] and any(w in lines[0].lower() for w in WHAT_TO_DO), rows[-1]   # where, what to do
        assert not left, rows[-1]                                                    # nothing half-written

# ---- Damaged prepared datasets and damaged chatft JSONL files: every command that reads one ends in one line
# naming the folder or file (and the line, for a JSONL file) and what to do, and leaves nothing at its output path.
from chatft.core import write_jsonl
from chatft.synth import synthetic_conversations

ROWS = []           # (command, damage, how it ended): the table `python tests/test_reliability.py` prints
DATA_WHAT_TO_DO = r"\b(prepare|export|fix|delete|restore|make|give|use|choose|check)\b"   # a word of what to do

LEAD = {}   # (damage, command): the fix a case waits for (xfail, strict); none left

def _param(damage, name):
    why = LEAD.get((damage, name))
    return pytest.param(damage, name, id=f"{damage}-{name}", marks=[pytest.mark.xfail(reason=why, strict=True)] if why else [])

def _run_main(args, tmp_path, where, damage, name, line=None):
    "Run `chatft args` in this process; check exit 1, one line naming `where` (and `line`), nothing at `out*`."
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try: rc = main([str(a) for a in args])                               # an exception here is a traceback
        except BaseException: ROWS.append((name, damage, "traceback")); raise
    lines = [l for l in err.getvalue().strip().splitlines() if l.strip() and not re.search(r"%\||\[\d\d:\d\d", l)]  # bars aside
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("out", ".out")))
    said = lines[0].split(": error: ", 1)[-1] if len(lines) == 1 else ""
    good = (rc == 1 and len(lines) == 1 and lines[0].startswith(f"chatft {name}: error: ") and str(where) in said
            and re.search(DATA_WHAT_TO_DO, said.replace(str(where), "").lower()) and (line is None or f"line {line}" in said))
    ROWS.append((name, damage, "read silently" if rc == 0 else "leftover" if left else "one line" if good else "message short"))
    row = (where.name, damage, name, rc, lines[-1][:200] if lines else "", left)
    assert rc == 1 and len(lines) == 1 and lines[0].startswith(f"chatft {name}: error: "), row
    assert str(where) in said and re.search(DATA_WHAT_TO_DO, said.replace(str(where), "").lower()), row  # where, what to do
    if line is not None: assert f"line {line}" in said, row                                   # the position
    assert not left, row                                                                       # nothing half-written

## Prepared datasets: `train DIR` and `eval RUN --data DIR`
def _rmtree(rel):
    def f(d): shutil.rmtree(d/rel)
    return f

def _empty(d): shutil.rmtree(d); d.mkdir()

def _a_run(run):
    def f(d): shutil.rmtree(d); shutil.copytree(run, d)
    return f

def _arrow(d, split="train"): return next((d/split).glob("*.arrow"))
def _truncate(d): a = _arrow(d); a.write_bytes(a.read_bytes()[:200])
def _garbage(d): _arrow(d).write_bytes(b"\0garbage" * 32)

PREPARED_DAMAGES = {
    "dataset_dict missing": _remove("dataset_dict.json"), "dataset_dict empty": _write("dataset_dict.json", ""),
    "dataset_dict not json": _write("dataset_dict.json", "{not json"), "dataset_dict without splits": _write("dataset_dict.json", "{}"),
    "splits not a list": _write("dataset_dict.json", '{"splits": "train"}'), "split folder missing": _rmtree("train"),
    "arrow file missing": lambda d: _arrow(d).unlink(), "arrow file truncated": _truncate, "arrow file garbage": _garbage,
    "state.json not json": _write("train/state.json", "{"), "dataset_info.json not json": _write("train/dataset_info.json", "{"),
    "report.json not json": _write("report.json", "{"),
    "empty folder": _empty, "no such folder": lambda d: shutil.rmtree(d)}
# chat_template.jinja is not read back: `train` takes the template from report.json's notes, `eval` from the run.
PREPARED_COMMANDS = {"train": lambda d, o, run: ["train", d, "--model", TINY_MODEL, "--max-steps", "1", "--max-length", "128", "-o", o],
                     "eval": lambda d, o, run: ["eval", run, "--data", d, "--n", "1", "--max-new-tokens", "2", "-o", o]}
PREPARED_NOT_READ = {("report.json not json", "eval")}        # eval reads the splits only

@pytest.fixture(scope="module")
def convs_file(tmp_path_factory):
    "A chatft JSONL file of 12 synthetic conversations."
    return write_jsonl(synthetic_conversations(12, seed=0), tmp_path_factory.mktemp("convs")/"convs.jsonl")

@pytest.fixture(scope="module")
def good_prepared(convs_file):
    "`chatft prepare` of `convs_file` for TINY_MODEL."
    d = convs_file.parent/"prepared"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["prepare", str(convs_file), "--model", TINY_MODEL, "-o", str(d), "--max-length", "128"]) == 0
    return d

def _prepared_cases():
    for damage in list(PREPARED_DAMAGES) + ["a run folder"]:
        for name in PREPARED_COMMANDS:
            if (damage, name) not in PREPARED_NOT_READ: yield _param(damage, name)

@pytest.mark.parametrize("damage,name", list(_prepared_cases()))
def test_every_command_on_a_damaged_prepared_dataset_is_one_line(good_prepared, good_run, tmp_path, damage, name):
    d = tmp_path/"prepared"
    shutil.copytree(good_prepared, d)
    (_a_run(good_run) if damage == "a run folder" else PREPARED_DAMAGES[damage])(d)
    _run_main(PREPARED_COMMANDS[name](d, tmp_path/"out", good_run), tmp_path, d, damage, name)

## chatft JSONL files: `explore`, `clean`, `prepare`, `train`, `prefer`, `export`
def _lines(convs_file): return convs_file.read_bytes().splitlines(keepends=True)

def _line3(new):
    "Replace line 3 (a conversation) with `new(conversation dict)` (bytes or a JSON-able value)."
    def f(src, dst):
        lines = _lines(src)
        v = new(json.loads(lines[2]))
        lines[2] = (v if isinstance(v, bytes) else json.dumps(v).encode()) + b"\n"
        dst.write_bytes(b"".join(lines))
    return f

def _message0(change):
    def f(d): d["messages"][0] = change(dict(d["messages"][0])); return d
    return f

def _truncated(src, dst): data = src.read_bytes(); dst.write_bytes(data[:len(data) - len(_lines(src)[-1])//2])
def _folder(src, dst): dst.mkdir(); shutil.copy(src, dst/src.name)
def _pairs(src, dst):
    write_jsonl([dict(id=f"p{i}", prompt=[dict(role="user", content="hi")], chosen=[dict(role="assistant", content="hello")],
                      rejected=[dict(role="assistant", content="go away")]) for i in range(4)], dst)

JSONL_DAMAGES = {   # name: (make(src, dst), the line the message names, or None)
    "empty file": (lambda s, d: d.write_bytes(b""), None), "truncated last line": (_truncated, 12),
    "not utf-8": (_line3(lambda d: json.dumps(d).encode().replace(b'"content": "', b'"content": "\xff\xfe', 1)), 3),
    "a line not an object": (_line3(lambda d: [1, 2]), 3),
    "messages missing": (_line3(lambda d: {k: v for k, v in d.items() if k != "messages"}), 3),
    "messages not a list": (_line3(lambda d: dict(d, messages="hi")), 3),
    "message without content": (_line3(_message0(lambda m: {"role": m["role"]})), 3),
    "message with an unknown role": (_line3(_message0(lambda m: dict(m, role="wizard"))), 3),
    "a folder": (_folder, None), "no such file": (lambda s, d: None, None), "preference pairs": (_pairs, None)}
JSONL_COMMANDS = {"explore": lambda f, o: ["explore", f, "--tokenizer", TINY_MODEL, "--plots", o],
                  "clean": lambda f, o: ["clean", f, "--tokenizer", TINY_MODEL, "-o", f"{o}.jsonl"],
                  "prepare": lambda f, o: ["prepare", f, "--model", TINY_MODEL, "--max-length", "128", "-o", o],
                  "train": lambda f, o: ["train", f, "--model", TINY_MODEL, "--max-steps", "1", "--max-length", "128", "-o", o],
                  "prefer": lambda f, o: ["prefer", f, "-o", f"{o}.jsonl"],
                  "export": lambda f, o: ["export", f, "-q", "-o", f"{o}.jsonl"]}
# what a command reads by design: `train` and `export` read any export with `read_export`, which skips a record it
# cannot use (or a message that is not the user's or the assistant's) and says so in its report; given a folder,
# they read the export files in it. (damage, command): what the printed report says.
_SKIPPED = {"a line not an object": "malformed record", "messages missing": "messages is not a list",
            "messages not a list": "messages is not a list", "message without content": "messages dropped: empty",
            "message with an unknown role": "messages dropped: not user or assistant", "a folder": "kept"}
JSONL_READ = {(d, c): said for d, said in _SKIPPED.items() for c in ("train", "export")}
JSONL_READ["preference pairs", "prefer"] = "wrote"          # a pairs file is prefer's input too: it reads it and writes the pairs
def _jsonl_cases():
    for damage in JSONL_DAMAGES:
        for name in JSONL_COMMANDS:
            if (damage, name) not in JSONL_READ: yield _param(damage, name)

def _damaged(convs_file, tmp_path, damage):
    f = tmp_path/("convs" if damage == "a folder" else "convs.jsonl")
    JSONL_DAMAGES[damage][0](convs_file, f)
    return f

@pytest.mark.parametrize("damage,name", list(_jsonl_cases()))
def test_every_command_on_a_damaged_jsonl_file_is_one_line(convs_file, tmp_path, damage, name):
    f = _damaged(convs_file, tmp_path, damage)
    # prefer reads the file as an export (its report lists the records it skipped) and then finds no pair: no line number
    _run_main(JSONL_COMMANDS[name](f, tmp_path/"out"), tmp_path, f, damage, name,
              None if name == "prefer" else JSONL_DAMAGES[damage][1])

@pytest.mark.parametrize("damage,name", list(JSONL_READ))
def test_a_command_that_reads_a_damaged_export_says_what_it_skipped(convs_file, tmp_path, damage, name):
    f = _damaged(convs_file, tmp_path, damage)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        rc = main([str(a) for a in JSONL_COMMANDS[name](f, tmp_path/"out")])
    ROWS.append((name, damage, "read, reported" if rc == 0 and JSONL_READ[damage, name] in out.getvalue() else "read silently"))
    assert rc == 0 and JSONL_READ[damage, name] in out.getvalue(), (rc, out.getvalue()[-2000:], err.getvalue()[-2000:])

def _table(rows)->str:
    "Per command: the damaged inputs tried and how each ended (`python tests/test_reliability.py` prints it)."
    from collections import Counter
    kinds = ["one line", "read, reported", "message short", "traceback", "leftover", "read silently"]
    count = {c: Counter(k for n, _, k in rows if n == c) for c in dict.fromkeys(n for n, _, _ in rows)}
    head = f"| command | inputs | {' | '.join(kinds)} |\n|" + "---|" * (len(kinds) + 2)
    return head + "".join(f"\n| {c} | {sum(n.values())} | " + " | ".join(str(n[k]) for k in kinds) + " |"
                          for c, n in count.items())

if __name__ == "__main__":      # the table for the closing note: damaged inputs per command, and how each ended
    import sys
    rc = pytest.main([__file__, "-q", "-n", "0", "-p", "no:warnings", "-k", "damaged_run or prepared or jsonl or export"])
    mod = next(m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == __file__ and getattr(m, "ROWS", None))
    print(_table(mod.ROWS)); sys.exit(rc)
