"""dev/gpu_check.py (issue 26) keeps working where there is no GPU: its `--dry-run` runs every path on the CPU with
the tiny model and prints (and writes as JSON) a row for each, none failed, the T4 plan in fp16."""
import os, re, sys, json, subprocess, importlib.util
from pathlib import Path
import pytest

SCRIPT = Path(__file__).resolve().parents[1]/"dev"/"gpu_check.py"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}

def script():
    "dev/gpu_check.py as a module (it imports torch and chatft only when it runs)."
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

@pytest.mark.slow
def test_dry_run(tmp_path):
    "About 1.5 minutes on 2 cores: 4 short trainings, a merge, a GGUF and a served run."
    res = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--json", str(tmp_path/"check.json"),
                          "--out", str(tmp_path/"runs")], env=ENV, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    got = json.loads((tmp_path/"check.json").read_text())
    rows = {r["path"]: r for r in got["rows"]}
    assert list(rows) == script().PATHS and got["dry_run"]
    assert not [r for r in rows.values() if r["status"] not in ("pass", "skipped")], res.stdout
    assert rows["t4 fp16"]["status"] == "pass" and "T4 plan: fp16" in rows["t4 fp16"]["reason"]
    assert rows["2 gpus"]["status"] == "skipped" and "no CUDA" in rows["2 gpus"]["reason"]
    for k in ("bf16", "qlora 4-bit", "early stopping", "merge", "serve"): assert rows[k]["status"] == "pass", rows[k]
    table = [l for l in res.stdout.splitlines() if l.startswith("| ")]
    assert table[0].startswith("| path | status |") and [l.split(" | ")[0][2:] for l in table[1:]] == list(rows)
    assert all(len(re.split(r"(?<!\\)\|", l)) == 7 for l in table), table    # 5 cells: a "|" in a cell is escaped
