"chatft.explore on the real samples, and `chatft explore` through the console script."
import subprocess, sys
from pathlib import Path
import pytest
from chatft.export import read_export
from chatft.core import write_jsonl
from chatft.explore import message_table, conversation_table, summarize, save_plots, browse_html, find_conversations

CHATFT = str(Path(sys.executable).parent / "chatft")

def sample_convs(samples):
    "Every conversation of every real sample, read with `read_export`."
    convs = []
    for p in sorted(samples.iterdir()):
        if p.name == "SOURCES.md": continue
        c, report = read_export(p, progress=False)
        assert report.kept == len(c)
        convs += c
    return convs

def test_explore_samples(samples, tmp_path):
    convs = sample_convs(samples)
    assert len(convs) > 10
    msgs = message_table(convs, str.split)
    table = conversation_table(convs, messages=msgs)
    assert len(table) == len(convs) and len(msgs) == sum(len(c.messages) for c in convs)
    assert table.tokens.sum() == msgs.tokens.sum()
    s = summarize(convs, messages=msgs, table=table)
    assert s.conversations == len(convs) and "conversations" in str(s) and "<table>" in s._repr_html_()
    paths = save_plots(msgs, table, tmp_path / "plots")           # samples without timestamps or models must still plot
    assert all(p.stat().st_size > 1000 for p in paths)
    assert isinstance(find_conversations(convs, text="(unbalanced"), list)   # a bad regex is searched as plain text
    assert "match" in browse_html(convs, text="the", page=99)     # past the last page: the last page

def test_explore_one_sample_without_times(samples, tmp_path):
    "A history with no timestamps (OpenAI fine-tuning JSONL) still summarises and plots (with a note instead of bars)."
    c, _ = read_export(next(samples.glob("openai-finetune-jsonl*")), progress=False)
    msgs = message_table(c, str.split); table = conversation_table(c, messages=msgs)
    assert summarize(c, messages=msgs, table=table).first is None
    assert len(save_plots(msgs, table, tmp_path)) == 5

def run(*args):
    return subprocess.run([CHATFT, *map(str, args)], capture_output=True, text=True, timeout=600)

def test_cli_explore_synthetic(tmp_path):
    from chatft.synth import synthetic_conversations
    write_jsonl(synthetic_conversations(30), tmp_path / "h.jsonl")
    r = run("explore", tmp_path / "h.jsonl", "--plots", tmp_path / "plots")
    assert r.returncode == 0, r.stderr
    assert "suggested max_seq_length" in r.stdout
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["activity.png", "lengths.png", "models.png", "top_words.png", "turns.png"]

@pytest.mark.parametrize("content, message", [
    ("", "empty"),
    ('[{"mapping": {}, "title": "a raw ChatGPT export"}]', "chatft JSONL"),
    ("not json at all\n", "not valid JSON"),
])
def test_cli_explore_bad_input(tmp_path, content, message):
    f = tmp_path / "in.jsonl"; f.write_text(content)
    r = run("explore", f)
    assert r.returncode == 1
    assert r.stderr.startswith("chatft explore: error:") and message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1

def test_cli_explore_missing_file(tmp_path):
    r = run("explore", tmp_path / "nope.jsonl")
    assert r.returncode == 1 and "no such file" in r.stderr

def test_cli_explore_never_replaces_pictures(tmp_path):
    from chatft.synth import synthetic_conversations
    write_jsonl(synthetic_conversations(20), tmp_path / "h.jsonl")
    pics = tmp_path / "pics"
    pics.mkdir()
    (pics / "activity.png").write_bytes(b"my holiday picture")
    r = run("explore", tmp_path / "h.jsonl", "--plots", pics)
    assert r.returncode == 1 and "--overwrite" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert (pics / "activity.png").read_bytes() == b"my holiday picture" and len(list(pics.iterdir())) == 1
    r = run("explore", tmp_path / "h.jsonl", "--plots", pics, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert (pics / "activity.png").stat().st_size > 1000 and len(list(pics.iterdir())) == 5

def test_cli_explore_plots_into_a_file(tmp_path):
    from chatft.synth import synthetic_conversations
    write_jsonl(synthetic_conversations(20), tmp_path / "h.jsonl")
    r = run("explore", tmp_path / "h.jsonl", "--plots", tmp_path / "h.jsonl")
    assert r.returncode == 1 and "is a file" in r.stderr and "Traceback" not in r.stderr
