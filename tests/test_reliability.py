"""Every command that reads a run, on damaged run folders: `chatft eval`, `chat -m`, `merge`, `gguf` and
`push --dry-run` each end with exit code 1 and one line on stderr naming the folder or file and what to do, never a
traceback, and leave nothing at their output path (nor a `.part` beside it).

The damages: plan.json missing, empty, not JSON, not an object, without its fields; the adapter's weights missing or
not safetensors; adapter_config.json, tokenizer.json or tokenizer_config.json not JSON; the chat template missing; a
plan naming another model than the adapter was trained on; a system prompt that is not UTF-8; a prepared dataset
given as a run; a folder that does not exist. The commands run in this process through `chatft.cli.main`, as the
console script runs them (an exception escaping `main` would be the traceback a user sees)."""
import os, io, json, shutil, contextlib
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
            "push": lambda r, o: ["push", r, "me/model", "--dry-run", "-o", o]}
# what a command never reads: the command runs (exit 0) and is not asked to fail
WHAT_TO_DO = ("train", "make one", "restore", "delete", "give")
NOT_READ = {("system prompt not utf-8", "eval"), ("another model's plan", "push")}   # push checks files, not shapes

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
            rc = main([str(a) for a in args(run, out)])                      # an exception here is a traceback
        lines = err.getvalue().strip().splitlines()
        left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("out-", ".out-")))
        rows.append((name, rc, lines[-1][:160] if lines else "", left))
        assert rc == 1 and len(lines) == 1 and lines[0].startswith(f"chatft {name}: error: "), rows[-1]
        assert str(run) in lines[0] and any(w in lines[0].lower() for w in WHAT_TO_DO), rows[-1]   # where, what to do
        assert not left, rows[-1]                                                    # nothing half-written
