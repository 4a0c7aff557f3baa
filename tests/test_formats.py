"""`chatft prepare ... --format trl|sharegpt|autotrain` (`prepare_cli` in this process): the split conversations
written beside the prepared dataset, loaded back with `datasets.load_dataset` as TRL, Axolotl, LLaMA-Factory and
AutoTrain load them: one row per conversation of each split, the roles each layout names, the system prompt and the
swapped roles of `--train-on me`, the chat template's text, and no held-out conversation in train."""
import io, contextlib
import pytest
from datasets import load_dataset

from chatft.core import write_jsonl, ChatftError
from chatft.synth import synthetic_conversations
from chatft.models import TINY_MODEL, load_tokenizer
from chatft.template import render
from chatft.dataset import prepare_cli, load_prepared, format_row, FORMATS

def run(*args)->str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out): assert prepare_cli(list(map(str, args))) == 0
    return out.getvalue()

@pytest.fixture(scope="module")
def convs(): return synthetic_conversations(24, seed=0)

@pytest.fixture(scope="module")
def prepared(convs, tmp_path_factory):
    d = tmp_path_factory.mktemp("formats")
    src = write_jsonl(convs, d/"in.jsonl")
    out = run(src, "--model", TINY_MODEL, "-o", d/"out", "--max-length", 256, "--system", "Be brief.",
              "--format", "trl", "--format", "sharegpt", "--format", "autotrain")
    return d/"out", out

def ids_of(folder, split): return list(dict.fromkeys(load_prepared(folder)[split]["id"]))

def test_each_file_is_said_and_loads(prepared, convs):
    folder, out = prepared
    for f in ("trl/train.jsonl", "trl/test.jsonl", "sharegpt/train.jsonl", "sharegpt/test.jsonl",
              "autotrain/train.csv", "autotrain/train.jsonl", "autotrain/test.csv"):
        assert f"wrote {folder/f}: " in out, out
    by_id = {c.id: c for c in convs}
    for split in ("train", "test"):
        ids = ids_of(folder, split)
        trl = load_dataset("json", data_files=str(folder/"trl"/f"{split}.jsonl"))["train"]
        share = load_dataset("json", data_files=str(folder/"sharegpt"/f"{split}.jsonl"))["train"]
        auto = load_dataset("csv", data_files=str(folder/"autotrain"/f"{split}.csv"))["train"]
        assert len(ids) > 0 and trl.num_rows == share.num_rows == auto.num_rows == len(ids)
        for row, s_row, cid in zip(trl, share, ids):
            msgs = row["messages"]
            assert msgs[0] == dict(role="system", content="Be brief.")
            assert [m["content"] for m in msgs[1:]] == [m["content"] for m in by_id[cid].messages][:len(msgs) - 1]
            assert {m["role"] for m in msgs[1:]} <= {"user", "assistant"} and msgs[-1]["role"] == "assistant"
            assert [m["from"] for m in s_row["conversations"]] == [
                dict(system="system", user="human", assistant="gpt")[m["role"]] for m in msgs]
        tok = load_tokenizer(TINY_MODEL)
        assert auto.column_names == ["text"] and auto[0]["text"] == render(trl[0]["messages"], tok)

def test_held_out_conversations_are_not_in_train(prepared):
    folder, _ = prepared
    train = load_dataset("json", data_files=str(folder/"trl/train.jsonl"))["train"]
    test = load_dataset("json", data_files=str(folder/"trl/test.jsonl"))["train"]
    key = lambda row: tuple(m["content"] for m in row["messages"])
    assert not {key(r) for r in train} & {key(r) for r in test}
    texts = load_dataset("csv", data_files=str(folder/"autotrain/train.csv"))["train"]["text"]
    replies = [r["messages"][-1]["content"] for r in test]
    assert not [r for r in replies if any(r in t for t in texts)]

def test_train_on_me_swaps_roles_and_overwrite_keeps_working(convs, tmp_path):
    src = write_jsonl(convs, tmp_path/"in.jsonl")
    run(src, "--model", TINY_MODEL, "-o", tmp_path/"out", "--max-length", 256, "--train-on", "me", "--format", "trl")
    row = load_dataset("json", data_files=str(tmp_path/"out/trl/train.jsonl"))["train"][0]
    first = next(c for c in convs if c.id == ids_of(tmp_path/"out", "train")[0])
    body = [m for m in row["messages"] if m["role"] != "system"]
    assert [m["role"] for m in body[:2]] == ["assistant", "user"]       # your side (first.messages[0]) is the assistant
    assert body[0]["content"] == first.messages[0]["content"] and first.messages[0]["role"] == "user"
    run(src, "--model", TINY_MODEL, "-o", tmp_path/"out", "--max-length", 256, "--overwrite")   # formats are ours
    assert not (tmp_path/"out/trl").exists()

def test_unknown_format():
    with pytest.raises(ChatftError, match="trl, sharegpt, autotrain"): format_row([], "alpaca")
    assert set(FORMATS) == {"trl", "sharegpt", "autotrain"}
