"""`chatft demo` through the real console script, with the real (offline) demo model on the CPU."""
import os, sys, json, subprocess
from pathlib import Path
import pytest
from chatft.models import TINY_MODEL

CHATFT = str(Path(sys.executable).parent/"chatft")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}

@pytest.mark.slow
def test_demo_lowers_heldout_loss(tmp_path):
    out = tmp_path/"run"
    res = subprocess.run([CHATFT, "demo", "--minutes", "10", "--max-steps", "8", "-o", str(out)], capture_output=True, text=True, timeout=900,
                         env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"})
    assert res.returncode == 0, res.stderr[-4000:]
    for heading in ["[1/6] Read", "[3/6] Plan", "[6/6] Base and tuned", "held-out loss", "run folder:"]: assert heading in res.stdout
    m = json.loads((out/"metrics.json").read_text())
    assert m["held-out loss after"] < m["held-out loss before"], m
    assert len(json.loads((out/"answers.json").read_text())) == 3
    from chatft.train import load_run, answer
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
    from chatft.export import Conversation, write_jsonl
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
