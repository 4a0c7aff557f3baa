"""`chatft export` through the installed console script."""
import subprocess, sys, json
from pathlib import Path
from chatft.synth import synthetic_export

CHATFT = str(Path(sys.executable).parent / "chatft")

def run(*args):
    return subprocess.run([CHATFT, *map(str, args)], capture_output=True, text=True)

def test_export_success(tmp_path):
    export = synthetic_export(tmp_path, n=15)
    res = run("export", export, "-o", tmp_path / "out.jsonl")
    assert res.returncode == 0, res.stderr
    assert "read report" in res.stdout and "kept" in res.stdout and "wrote 15 conversations" in res.stdout
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert len(lines) == 15 and all({"id", "messages"} <= json.loads(l).keys() for l in lines)
    assert json.loads((tmp_path / "out.report.json").read_text())["total"] == 15
    assert "reading" in res.stderr                                     # the progress bar

def test_export_missing_file(tmp_path):
    res = run("export", tmp_path / "nope.zip", "-o", tmp_path / "out.jsonl")
    assert res.returncode == 1 and res.stderr.strip().count("\n") == 0
    assert "nope.zip: no such file" in res.stderr and "Traceback" not in res.stderr

def test_export_invalid_json(tmp_path):
    (tmp_path / "conversations.json").write_text('[{"mapping": {"a": }}]')
    res = run("export", tmp_path / "conversations.json", "-o", tmp_path / "out.jsonl")
    assert res.returncode == 1 and "invalid JSON at byte" in res.stderr and "line 1, column" in res.stderr
    assert "Traceback" not in res.stderr

def test_usage_lists_export():
    res = run("--help")
    assert res.returncode == 0 and "export" in res.stdout
