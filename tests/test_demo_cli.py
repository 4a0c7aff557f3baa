"""`chatft demo` through the real console script, with the real (offline) demo model on the CPU."""
import os, sys, json, subprocess
from pathlib import Path
import pytest

CHATFT = str(Path(sys.executable).parent/"chatft")

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
