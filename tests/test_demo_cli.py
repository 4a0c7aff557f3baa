"""`chatft demo` through the real console script, with the real (offline) demo model on the CPU."""
import os, sys, json, subprocess
from pathlib import Path
import pytest
from chatft.models import TINY_MODEL

CHATFT = str(Path(sys.executable).parent/"chatft")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}

def _table(stdout:str)->dict:
    "The side-by-side table printed after `[5/5]`: metric -> (base, tuned, difference)."
    lines = stdout[stdout.index("[5/5]"):].splitlines()
    top = next(i for i, l in enumerate(lines) if l.split() == ["metric", "base", "tuned", "difference"])
    rows = {}
    for l in lines[top+1:]:
        if not l.strip(): break
        *name, base, tuned, diff = l.split()
        rows[" ".join(name)] = tuple(float(x) for x in (base, tuned, diff))
    return rows

@pytest.mark.slow
def test_demo_lowers_heldout_loss(tmp_path):
    "The demo model trained for 8 steps: the evaluation it ends with shows a lower held-out loss, printed and saved."
    out = tmp_path/"run"
    res = subprocess.run([CHATFT, "demo", "--minutes", "10", "--max-steps", "8", "-o", str(out)], capture_output=True, text=True,
                         timeout=900, env=ENV)
    assert res.returncode == 0, res.stderr[-4000:]
    for heading in ["[1/5] Read", "[3/5] Plan", "[5/5] Base and tuned", "run folder:"]: assert heading in res.stdout
    # the summary says what was held out, what the split moved, why training stopped, which step it kept, and the probe
    for line in ["held out: ", "none repeats training text", "the split: the ", "ran the plan's 8 steps; kept the adapter of step",
                 "memorising: given 4 openings"]: assert line in res.stdout, line
    data = json.loads((out/"eval.json").read_text())
    s, printed = data["summary"], _table(res.stdout)
    loss = s["held-out loss"]
    assert loss["tuned"] < loss["base"] - 0.1, loss                                     # training helped, with a margin
    assert set(printed) == set(s) and {"held-out loss", "chrF++ (corpus)", "stop rate"} <= set(s)
    for metric, (base, tuned, diff) in printed.items():
        if base == base: assert abs(base - s[metric]["base"]) < 2e-3 and abs(tuned - s[metric]["tuned"]) < 2e-3, metric
    assert 0 < len(data["examples"]) <= 12 and 0 < len(data["probe"]) <= 4 and data["settings"]["max_new_tokens"] == 48
    for f in ("eval.md", "eval_metrics.png", "eval_lengths.png", "data/dataset_dict.json"): assert (out/f).exists(), f
    assert "## Evaluation" in (out/"README.md").read_text() and str(out.resolve()/"eval.md") in res.stdout
    from chatft.train import load_run, answer
    assert (out/".chatft-demo").exists()
    model, tok, plan = load_run(out)
    assert answer(model, tok, [{"role": "user", "content": "how long does rice keep in the fridge"}], max_new_tokens=8)

def test_demo_help():
    res = subprocess.run([CHATFT, "demo", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "--minutes" in res.stdout

def test_train_bad_data(tmp_path):
    res = subprocess.run([CHATFT, "train", str(tmp_path/"missing.jsonl"), "-o", str(tmp_path/"r")], capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert res.returncode == 1 and "no such file" in res.stderr and "Traceback" not in res.stderr

def _data(tmp_path, n=8):
    from chatft.core import Conversation, write_jsonl
    convs = [Conversation(id=f"c{i}", create_time=1.7e9+i, messages=[{"role": "user", "content": f"note number {i}"},
                                                                      {"role": "assistant", "content": "ok, noted."}]) for i in range(n)]
    return write_jsonl(convs, tmp_path/"data.jsonl")

def _train(data, out, *extra):
    "`chatft train` with the tiny model for one step."
    return subprocess.run([CHATFT, "train", str(data), "--model", TINY_MODEL, "-o", str(out), "--max-steps", "1", "--max-length", "128",
                           "--no-clean", *extra], capture_output=True, text=True, timeout=600, env=ENV)

def test_train_lora_alpha_from_plan(tmp_path):
    "The CLI passes what it was given; the plan decides alpha (2 x r) exactly as `plan_training` does."
    res = _train(_data(tmp_path), tmp_path/"run", "--lora-r", "8")
    assert res.returncode == 0, res.stderr[-3000:]
    plan = json.loads((tmp_path/"run"/"plan.json").read_text())
    assert (plan["lora_r"], plan["lora_alpha"]) == (8, 16)
    from chatft.train import plan_training
    assert plan_training(TINY_MODEL, [100]*8, lora_r=8).lora_alpha == 16


def _demo(out, *extra):
    "`chatft demo` with the tiny model on 12 synthetic conversations for one step, and a short evaluation."
    return subprocess.run([CHATFT, "demo", "--model", TINY_MODEL, "--conversations", "12", "--max-steps", "1", "--max-length", "256",
                           "--n", "2", "--max-new-tokens", "8", "--probe", "1", "-o", str(out), *extra],
                          capture_output=True, text=True, timeout=600, env=ENV)

def _files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}

def _one_line_error(res, *words):
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr[-3000:]
    assert any(all(w in l for w in words) for l in lines), res.stderr

def test_demo_keeps_a_train_run(tmp_path):
    "A run made by `chatft train` is never deleted by `chatft demo -o` into the same folder."
    run = tmp_path/"run"
    assert _train(_data(tmp_path), run).returncode == 0
    before = _files(run)
    _one_line_error(_demo(run), "chatft demo: error:", "nothing was deleted", "--overwrite")
    assert _files(run) == before

def test_demo_replaces_its_own_folder_or_with_overwrite(tmp_path):
    out = tmp_path/"demo"
    assert _demo(out).returncode == 0
    (out/"leftover.txt").write_text("from the first demo")
    res = _demo(out)
    assert res.returncode == 0, res.stderr[-3000:]
    assert not (out/"leftover.txt").exists() and (out/".chatft-demo").exists() and (out/"adapter_config.json").exists()
    assert "held-out loss" in _table(res.stdout) and (out/"eval.json").exists() and (out/"data"/"dataset_dict.json").exists()
    mine = tmp_path/"mine"
    mine.mkdir()
    (mine/"notes.txt").write_text("mine")
    _one_line_error(_demo(mine), "nothing was deleted")
    assert (mine/"notes.txt").read_text() == "mine"
    res = _demo(mine, "--overwrite")
    assert res.returncode == 0, res.stderr[-3000:]
    assert not (mine/"notes.txt").exists() and (mine/"adapter_config.json").exists()

def test_train_keeps_what_is_there(tmp_path):
    "`chatft train -o DIR` refuses a folder of yours and a finished run; --overwrite replaces; --resume needs an interrupted run."
    data = _data(tmp_path)
    mine = tmp_path/"mine"
    mine.mkdir()
    (mine/"README.md").write_text("my notes")
    _one_line_error(_train(data, mine), "is not empty and is not a chatft run", "nothing was deleted")
    assert _files(mine) == {"README.md": b"my notes"}
    run = tmp_path/"run"
    assert _train(data, run).returncode == 0
    before = _files(run)
    _one_line_error(_train(data, run), "holds a finished run", "--overwrite")
    _one_line_error(_train(data, run, "--resume"), "holds a finished run", "nothing to resume")
    assert _files(run) == before
    res = _train(data, run, "--overwrite", "--lora-r", "4")
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads((run/"plan.json").read_text())["lora_r"] == 4
