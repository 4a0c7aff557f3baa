"""Issue 28's promise: the speed work changes no result. The cleaned file, the prepared dataset (its split, ids, tokens
and labels) and the conversations moved out of the test split are digested here for the synthetic export, a large
synthetic export and the real samples; the digests were made by chatft before that work (commit a67fc1d; the same
at e99a72b).

    PYTHONPATH=/path/to/an/older/checkout python tests/test_same_results.py    # prints that checkout's digests
"""
import hashlib, json, tempfile
from pathlib import Path

EXPECTED = {   # `python tests/test_same_results.py` at commit a67fc1d, before the speed work
    'synthetic export (300)': dict(
        kept=252, dropped=[["assistant reply is an error or empty", 6], ["exact duplicate", 9], ["near duplicate", 10],
                           ["no assistant reply", 23]],
        clean='b48b2ee463e53f00', examples='227/25', prepared='d21595b0cf58289e', moved='4f53cda18c2baa0c'),
    'large export (3 MB)': dict(
        kept=130, dropped=[["exact duplicate", 5], ["no assistant reply", 11]],
        clean='2fba3664f8052683', examples='123/7', prepared='c90bdda87d46b208', moved='85f872fc20084f48'),
    'the samples': dict(
        kept=412, dropped=[["near duplicate", 104]],
        clean='21d54b485f545a46', examples='399/11', prepared='edc36416a152cbc0', moved='538d54436e644546'),
}

def _digest(convs:list, tokenizer)->dict:
    from chatft.core import write_jsonl
    from chatft.clean import clean
    from chatft.dataset import prepare
    cleaned, rep = clean(convs)
    with tempfile.TemporaryDirectory() as d:
        write_jsonl(cleaned, Path(d)/"clean.jsonl")
        clean_sha = hashlib.sha256((Path(d)/"clean.jsonl").read_bytes()).hexdigest()
    dsd, prep = prepare(cleaned, tokenizer, check=False)
    h = hashlib.sha256()
    for split in ("train", "test"):
        cols = dsd[split].select_columns(["id", "window", "input_ids", "labels"]).to_dict()
        h.update(json.dumps([split, cols["id"], cols["window"], cols["input_ids"], cols["labels"]]).encode())
    moved = hashlib.sha256(json.dumps(sorted(prep.notes.get("moved", {}).items())).encode()).hexdigest()
    return dict(kept=len(cleaned), dropped=sorted(rep.reasons().items()), clean=clean_sha[:16],
                examples=f"{len(dsd['train'])}/{len(dsd['test'])}", prepared=h.hexdigest()[:16], moved=moved[:16])

def _inputs(samples:Path|None)->dict:
    "{name: conversations}: what the digests are made of."
    from chatft.export import read_export
    from chatft.synth import synthetic_export, large_export
    out = {}
    with tempfile.TemporaryDirectory() as d:
        out["synthetic export (300)"] = read_export(synthetic_export(Path(d)/"a", n=300), progress=False)[0]
        out["large export (3 MB)"] = read_export(large_export(Path(d)/"b", target_mb=3), progress=False)[0]
    if samples is not None:
        convs = []
        for p in sorted(samples.iterdir()):
            if p.suffix not in (".json", ".jsonl"): continue
            try: convs += read_export(p, progress=False)[0]
            except Exception: pass                               # not every sample is a conversation export
        out["the samples"] = convs
    return out

def digests(samples:Path|None)->dict:
    from chatft.models import load_tokenizer
    tok = load_tokenizer("HuggingFaceTB/SmolLM2-135M-Instruct")
    return {name: _digest(convs, tok) for name, convs in _inputs(samples).items()}

SAMPLES = Path(__file__).resolve().parents[2]/"shared"/"samples"
_samples = lambda: SAMPLES if SAMPLES.is_dir() else None         # the synthetic inputs are checked without them

def test_clean_and_prepare_give_the_results_of_before():
    got = digests(_samples())
    assert set(got) == set(EXPECTED) - (set() if _samples() else {"the samples"})
    for name in got:
        g = {**got[name], "dropped": [list(x) for x in got[name]["dropped"]]}
        assert g == EXPECTED[name], f"{name}: {g} != {EXPECTED[name]}"

def test_clean_file_in_chunks_is_clean_all_at_once(tmp_path, monkeypatch):
    "`clean_file` streams the file a chunk at a time: the same file and the same report as `clean` on the whole list."
    import chatft.clean as C
    from chatft.core import write_jsonl
    for k, (name, convs) in enumerate(_inputs(_samples()).items()):
        write_jsonl(convs, tmp_path/f"in{k}.jsonl")
        cleaned, rep = C.clean(convs)
        write_jsonl(cleaned, tmp_path/f"all{k}.jsonl")
        for chunk in (37, 4000):               # exact and near duplicates across chunks, and one chunk
            monkeypatch.setattr(C, "_CHUNK", chunk)
            got = C.clean_file(tmp_path/f"in{k}.jsonl", tmp_path/f"out{k}.jsonl", overwrite=True)
            assert (tmp_path/f"out{k}.jsonl").read_bytes() == (tmp_path/f"all{k}.jsonl").read_bytes(), (name, chunk)
            assert got.to_dict() == rep.to_dict(), (name, chunk)
            dry = C.clean_file(tmp_path/f"in{k}.jsonl", None, dry_run=True)
            assert dry.to_dict() == {**rep.to_dict(), "dry_run": True}

if __name__ == "__main__":
    print(json.dumps(digests(_samples()), indent=1))

def test_clean_file_token_filters_in_chunks(tmp_path, monkeypatch):
    "Token counts made a chunk at a time, with the tokenizer loaded once: the same drops as `clean` all at once."
    import chatft.clean as C
    from chatft.core import write_jsonl
    from chatft.synth import synthetic_conversations
    convs = synthetic_conversations(200, seed=4)
    write_jsonl(convs, tmp_path/"in.jsonl")
    cleaned, rep = C.clean(convs, min_tokens=60, max_tokens=400)
    assert {"fewer than 60 tokens", "more than 400 tokens"} <= set(rep.reasons()), rep.reasons()
    monkeypatch.setattr(C, "_CHUNK", 23)
    got = C.clean_file(tmp_path/"in.jsonl", tmp_path/"out.jsonl", min_tokens=60, max_tokens=400)
    assert got.to_dict() == rep.to_dict()

def test_held_out_looked_for_in_forked_processes_as_in_one(monkeypatch):
    "`seen_in_training` looks for many held-out conversations in forked processes: the same split as in one."
    import chatft.dataset as D
    from chatft.clean import clean
    moved = 0
    for name, convs in _inputs(_samples()).items():
        convs = clean(convs)[0]
        for size in (0.1, 0.5):                              # a half held out: more replies seen in training
            monkeypatch.setattr(D, "SEEN_PARALLEL_FROM", 10**9); one = D.split_conversations(convs, size)
            monkeypatch.setattr(D, "SEEN_PARALLEL_FROM", 1); forked = D.split_conversations(convs, size)
            assert forked == one, (name, size)
            moved += len(one[2])
    assert moved, "nothing was moved from the test split: nothing was found"
