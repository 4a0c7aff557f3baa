"""`chatft prepare IN.jsonl --model NAME -o DIR` through the real console script."""
import shutil, subprocess, sys, os
from pathlib import Path
import pytest
from chatft.core import write_jsonl
from chatft.synth import synthetic_conversations
from chatft.models import DEMO_MODEL

CHATFT = shutil.which("chatft") or str(Path(sys.executable).parent/"chatft")

def _run(*args):
    return subprocess.run([CHATFT, "prepare", *map(str, args)], capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})

def test_prepare_cli(tmp_path):
    src = write_jsonl(synthetic_conversations(30, seed=0), tmp_path/"in.jsonl")
    res = _run(src, "--model", DEMO_MODEL, "-o", tmp_path/"out", "--max-length", 512)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "[[" in res.stdout and "]]" in res.stdout            # the plain-text mask preview
    assert "prepare report" in res.stdout and "packed" in res.stdout
    from datasets import load_from_disk, DatasetDict
    dsd = load_from_disk(str(tmp_path/"out"))
    assert isinstance(dsd, DatasetDict) and set(dsd) == {"train", "test"}
    row = dsd["train"][0]
    assert len(row["input_ids"]) == len(row["labels"]) <= 512
    assert -100 in row["labels"] and any(l != -100 for l in row["labels"])
    assert (tmp_path/"out"/"train.jsonl").exists() and (tmp_path/"out"/"report.json").exists()

def test_prepare_cli_me_mode_and_persona(tmp_path):
    src = write_jsonl(synthetic_conversations(20, seed=1), tmp_path/"in.jsonl")
    res = _run(src, "-o", tmp_path/"out", "--train-on", "me", "--system", "You are Sam.", "--split", "random")
    assert res.returncode == 0, res.stderr[-3000:]
    from chatft.dataset import load_prepared
    from chatft.models import load_tokenizer
    tok = load_tokenizer(DEMO_MODEL)
    text = tok.decode(load_prepared(tmp_path/"out")["train"][0]["input_ids"])
    assert "You are Sam." in text

def test_prepare_cli_bad_input(tmp_path):
    res = _run(tmp_path/"missing.jsonl", "-o", tmp_path/"out")
    assert res.returncode == 1 and "no such file" in res.stderr and "Traceback" not in res.stderr

def test_prepare_cli_never_replaces_a_folder(tmp_path):
    src = write_jsonl(synthetic_conversations(20, seed=0), tmp_path/"in.jsonl")
    mine = tmp_path/"mine"
    mine.mkdir()
    (mine/"notes.txt").write_text("my notes")
    for extra in ([], ["--overwrite"]):
        res = _run(src, "-o", mine, "--max-length", 512, *extra)
        assert res.returncode == 1 and "did not write" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert [p.name for p in mine.iterdir()] == ["notes.txt"] and (mine/"notes.txt").read_text() == "my notes"
    res = _run(src, "-o", tmp_path/"in.jsonl")
    assert res.returncode == 1 and "is a file" in res.stderr and (tmp_path/"in.jsonl").read_bytes() == src.read_bytes()

def test_prepare_cli_overwrite_replaces_only_a_prepared_dataset(tmp_path):
    src = write_jsonl(synthetic_conversations(20, seed=0), tmp_path/"in.jsonl")
    out = tmp_path/"out"
    assert _run(src, "-o", out, "--max-length", 512).returncode == 0
    res = _run(src, "-o", out, "--max-length", 512)
    assert res.returncode == 1 and "--overwrite" in res.stderr and "Traceback" not in res.stderr
    res = _run(src, "-o", out, "--max-length", 256, "--overwrite")
    assert res.returncode == 0, res.stderr[-3000:]
    from chatft.dataset import load_prepared
    assert max(len(x) for x in load_prepared(out)["train"]["input_ids"]) <= 256
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())     # no partial folder left behind

def test_damaged_prepared_dataset_is_one_line(tmp_path):
    "A prepared folder whose dataset_dict.json lists no splits, or names one that is not there: train says so in one line."
    from chatft.core import ChatftError
    from chatft.dataset import load_prepared
    (tmp_path/"d").mkdir()
    for text in ('{"splits": "train"}', '{"splits": ["train"]}', "not json", "{}"):
        (tmp_path/"d"/"dataset_dict.json").write_text(text)
        with pytest.raises(ChatftError, match="the prepared dataset is damaged"): load_prepared(tmp_path/"d")
    res = subprocess.run([CHATFT, "train", str(tmp_path/"d"), "-o", str(tmp_path/"run"), "--max-steps", "1"],
                         capture_output=True, text=True)
    assert res.returncode == 1 and "the prepared dataset is damaged (KeyError: 'splits')" in res.stderr, res.stderr[-500:]
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (tmp_path/"run").exists()
