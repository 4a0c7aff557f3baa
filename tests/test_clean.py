"chatft.clean: redaction properties, the real samples, and `chatft clean` through the console script."
import json, random, string, subprocess, sys
from pathlib import Path
import pytest
from hypothesis import given, settings, strategies as st
from chatft.export import read_export
from chatft.core import Conversation, read_jsonl, write_jsonl
from chatft.clean import find_pii, redact_text, luhn_ok, iban_ok, clean, report_path
from chatft.synth import synthetic_conversations

CHATFT = str(Path(sys.executable).parent / "chatft")

# ---- redaction -------------------------------------------------------------------------------
def luhn_number(prefix, length, rng):
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    return next(body + d for d in string.digits if luhn_ok(body + d))

def iban_for(cc, bban):
    chk = 98 - int("".join(str(int(c, 36)) for c in bban + cc + "00")) % 97
    return f"{cc}{chk:02d}{bban}"

AROUND = st.sampled_from(["{}", "pay with {} please", "card: {}.", "({})", "see {}\nthanks", "«{}»"])

@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 10**9), prefix=st.sampled_from(["4", "51", "55", "2221", "6011", "35"]), sep=st.sampled_from(["", " ", "-"]), around=AROUND)
def test_any_valid_card_is_redacted(seed, prefix, sep, around):
    n = luhn_number(prefix, 16, random.Random(seed))
    card = sep.join(n[i:i+4] for i in range(0, 16, 4))
    text = around.format(card)
    red, found = redact_text(text)
    assert card not in red and [f.type for f in found] == ["CARD"]

@settings(max_examples=200, deadline=None)
@given(digits=st.text("0123456789", min_size=18, max_size=18), grouped=st.booleans(), around=AROUND)
def test_any_valid_de_iban_is_redacted(digits, grouped, around):
    iban = iban_for("DE", digits)
    assert iban_ok(iban)
    shown = " ".join(iban[i:i+4] for i in range(0, len(iban), 4)) if grouped else iban
    red, found = redact_text(around.format(shown))
    assert shown not in red and [f.type for f in found] == ["IBAN"]

@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["v{}.{}.{}", "version {}.{}.{}.{}", "{}.{}.{}", "python 3.{}.{}", "2024-{:02d}-{:02d}", "{}:{}:{}"]),
       st.lists(st.integers(0, 30), min_size=4, max_size=4))
def test_versions_dates_times_are_kept(template, parts):
    text = f"installed {template.format(*parts)} yesterday"
    assert find_pii(text) == []

@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**160 - 1), st.integers(0, 2**128 - 1))
def test_hashes_and_uuids_are_kept(h, u):
    import uuid
    text = f"commit {h:040x} fixes {uuid.UUID(int=u)}; sha {h:064x}"
    assert find_pii(text) == []

def test_invalid_checksums_are_kept():
    assert find_pii("card 4111 1111 1111 1112 and IBAN GB82 WEST 1234 5698 7654 33") == []

@pytest.mark.parametrize("text, kind", [
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nQyNTUxOQAAACBq\n-----END OPENSSH PRIVATE KEY-----", "SECRET"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\n(truncated when pasted", "SECRET"),
    ("AKIAIOSFODNN7EXAMPLE", "API_KEY"), ("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "API_KEY"),
    ("AIzaSyD-1a2B3c4D5e6F7g8H9i0JkLmNoPqRsTu", "API_KEY"), ("hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567", "API_KEY"),
    ("ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "API_KEY"),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "SECRET"),
    ("mysql://root:My$ecretPw1@10.0.0.5/db", "CREDENTIALS"), ("+1 (415) 555-2671", "PHONE"), ("2001:db8:85a3::8a2e:370:7334", "IP"),
])
def test_structured_kinds(text, kind):
    assert kind in [f.type for f in find_pii(text)]

# ---- clean on real samples -------------------------------------------------------------------
def test_clean_samples(samples):
    for p in sorted(samples.iterdir()):
        if p.name == "SOURCES.md": continue
        convs, _ = read_export(p, progress=False)
        out, report = clean(convs)
        assert report.total == len(convs), p.name                  # every conversation accounted for
        assert {s['id'] for s in report.skipped} | set(report.kept_ids) == {c.id for c in convs}
        assert all(c.messages[-1]['role'] == 'assistant' for c in out)
        json.dumps(report.to_dict())                               # the report is JSON-ready

# ---- the command line ------------------------------------------------------------------------
def run(*args):
    return subprocess.run([CHATFT, *map(str, args)], capture_output=True, text=True, timeout=600)

@pytest.fixture
def history(tmp_path):
    return write_jsonl(synthetic_conversations(60), tmp_path / "history.jsonl")

def test_cli_redacts_by_default(history, tmp_path):
    out = tmp_path / "train.jsonl"
    r = run("clean", history, "-o", out)
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert "sam.rivers" not in text and "sk-proj-" not in text and "4111 1111" not in text and "[EMAIL]" in text
    rep = json.loads(report_path(out).read_text())
    assert rep["total"] == 60 and rep["kept"] == len(read_jsonl(out)) and rep["notes"]["redactions"]
    assert "sam.rivers" not in report_path(out).read_text()       # examples are masked
    assert "clean report" in r.stdout

def test_cli_no_redact_warns(history, tmp_path):
    r = run("clean", history, "-o", tmp_path / "o.jsonl", "--no-redact", "--report", tmp_path / "r.json")
    assert r.returncode == 0 and "NOT redacted" in r.stdout and (tmp_path / "r.json").exists()
    assert "sam.rivers" in (tmp_path / "o.jsonl").read_text()

def test_cli_dry_run_writes_nothing(history, tmp_path):
    before = sorted(tmp_path.iterdir())
    r = run("clean", history, "-o", tmp_path / "o.jsonl", "--dry-run", "--min-turns", "2", "--since", "2024-06-01")
    assert r.returncode == 0 and "dry run" in r.stdout and "fewer than 2 turns" in r.stdout
    assert sorted(tmp_path.iterdir()) == before

def test_cli_filters(history, tmp_path):
    out = tmp_path / "o.jsonl"
    r = run("clean", history, "-o", out, "--models", "gpt-4o", "--exclude", "landlord", "--language", "en", "--no-dedup")
    assert r.returncode == 0, r.stderr
    kept = read_jsonl(out)
    assert kept and all(c.model == "gpt-4o" and "landlord" not in str(c.messages) for c in kept)

@pytest.mark.parametrize("content, args, message", [
    ("", [], "empty"),
    ('{"conversations": [{"from": "human", "value": "hi"}]}\n', [], "chatft JSONL"),
    (None, ["--include", "words that appear nowhere"], "removed all 60"),
    (None, ["--since", "last tuesday"], "YYYY-MM-DD"),
    (None, ["--exclude", "(oops"], "not valid"),
])
def test_cli_bad_input(history, tmp_path, content, args, message):
    f = history if content is None else tmp_path / "bad.jsonl"
    if content is not None: f.write_text(content)
    r = run("clean", f, "-o", tmp_path / "out.jsonl", *args)
    assert r.returncode == 1, r.stdout
    assert r.stderr.startswith("chatft clean: error:") and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out.jsonl").exists()

# ---- near duplicates -------------------------------------------------------------------------
from chatft.clean import near_duplicates, drop_duplicates, shingles, jaccard, _sketch, NEAR_DUPLICATE_THRESHOLD

ANSWER = ("Open the file with newline='' so that line endings are handled by the csv module, create a csv.reader "
          "from it, and call next(reader) once to skip the header row. Then loop over the remaining rows: each row is "
          "a list of strings, one per column. If you want dictionaries keyed by column name instead, use csv.DictReader, "
          "which reads the header row for you.")

def edited(text, at): return " ".join(w + "x" if i in at else w for i, w in enumerate(text.split()))

def conv(id, text, t=0.0):
    return Conversation(id, [dict(role="user", content="How do I read a CSV file?"), dict(role="assistant", content=text)],
                        create_time=t)

def test_lsh_candidate_below_threshold_is_kept():
    "Issue 15: LSH buckets this pair together at threshold 0.85, but its similarity is 0.75: both stay."
    from datasketch import MinHashLSH
    rephrased = edited(ANSWER, {3, 7, 11})
    assert jaccard(shingles(ANSWER), shingles(rephrased)) == 0.75
    lsh = MinHashLSH(threshold=NEAR_DUPLICATE_THRESHOLD, num_perm=128)
    lsh.insert("a", _sketch(shingles(ANSWER), 128))
    assert lsh.query(_sketch(shingles(rephrased), 128)) == ["a"], "the pair no longer shows the bug: pick another"
    assert near_duplicates(dict(a=ANSWER, b=rephrased)) == {}
    kept, rep = drop_duplicates([conv("a", ANSWER), conv("b", rephrased)])
    assert [c.id for c in kept] == ["a", "b"] and rep.skipped == []

def test_synthetic_near_duplicates_are_the_questions_asked_again():
    "The synthetic history's only near duplicates are the questions it asks again on purpose (the 24th, the 54th)."
    convs = synthetic_conversations(60, seed=0)
    kept, rep = drop_duplicates(convs)
    near = [s for s in rep.skipped if s['reason'] == "near duplicate"]
    assert all(s['similarity'] >= NEAR_DUPLICATE_THRESHOLD for s in near)
    index = {c.id: i for i, c in enumerate(convs)}
    assert sorted(max(index[s['id']], index[s['duplicate_of']]) for s in near) == [24, 54]

def test_near_duplicate_report_records_exact_similarity():
    typo = edited(ANSWER, {5})
    kept, rep = drop_duplicates([conv("a", ANSWER, 1.0), conv("b", typo, 2.0)])
    assert [c.id for c in kept] == ["b"]                          # same length: the newer copy stays
    (s,) = rep.skipped
    want = jaccard(*(shingles("\n".join(f"{m['role']}: {m['content']}" for m in c.messages))
                     for c in (conv("a", ANSWER), conv("b", typo))))
    assert s['reason'] == "near duplicate" and s['duplicate_of'] == "b" and s['similarity'] == round(want, 3) >= 0.85

@settings(max_examples=40, deadline=None)
@given(st.lists(st.sets(st.integers(0, 60), max_size=6), min_size=2, max_size=6), st.sampled_from([0.6, 0.75, 0.85, 0.95]))
def test_every_reported_pair_is_above_threshold(edits, threshold):
    "Whatever LSH proposes, a pair is reported only at or above the threshold, with its exact similarity."
    texts = {f"t{i}": edited(ANSWER, e) for i, e in enumerate(edits)}
    for k, (other, sim) in near_duplicates(texts, threshold).items():
        exact = jaccard(shingles(texts[k]), shingles(texts[other]))
        assert exact >= threshold and sim == round(exact, 3) and list(texts).index(other) < list(texts).index(k)

def test_split_uses_the_same_rule():
    "The split moves a near duplicate by cleaning's rule; a rephrased answer that still shares 50 characters moves too."
    from chatft.dataset import split_conversations
    train = [conv("old", ANSWER, 1.0), conv("other", "Use pandas.read_csv with header=0 and skiprows.", 2.0)]
    test = [conv("near", edited(ANSWER, {5}), 10.0), conv("rephrased", edited(ANSWER, {3, 7, 11}), 11.0)]
    tr, te, moved = split_conversations(train + test, test_size=0.5)
    assert list(moved) == ["near", "rephrased"] and moved["near"].startswith("near duplicate of old")
    assert moved["rephrased"].startswith("a reply shares") and moved["rephrased"].split()[-1] in ("old", "near")
    assert [c.id for c in te] == ["other"]                        # held out in their place: the newest left that repeats nothing

# ---- redaction examples ----------------------------------------------------------------------
def test_redaction_examples_hold_a_redaction():
    "The third example used to be picked on brackets and held no redaction: every example now holds a placeholder."
    from chatft.clean import redaction_examples
    code = Conversation("code", [dict(role="user", content="rows[0] is empty, see [1] and [image]"),
                                 dict(role="assistant", content="Use `[line.split() for line in f]` and check rows[0].")])
    private = Conversation("p", [dict(role="user", content="mail jo.smith@gmail.com or call +44 20 7946 0958"),
                                 dict(role="assistant", content="Done.")])
    assert redaction_examples([code] * 5) == []
    ex = redaction_examples([code, private, code], n=3)
    assert [e[0] for e in ex] == ["p"] and ex[0][3] == ["EMAIL", "PHONE"]
    assert "[EMAIL]" in ex[0][2] and "jo.smith" not in ex[0][2] and "7946" not in ex[0][2]
    synth = redaction_examples(synthetic_conversations(60, seed=0), n=3)
    assert len(synth) == 3 and len({e[3][0] for e in synth}) == 3          # three different kinds first
    assert all(any(f"[{k}]" in text for k in kinds) for _, _, text, kinds in synth)

# ---- never replacing a user's files ----------------------------------------------------------
def test_cli_refuses_to_replace_output_or_report(history, tmp_path):
    out = tmp_path / "o.jsonl"
    out.write_text("my own file\n")
    r = run("clean", history, "-o", out)
    assert r.returncode == 1 and "--overwrite" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert out.read_text() == "my own file\n" and not report_path(out).exists()
    out.unlink()
    report_path(out).write_text("{}")                              # an old report beside it
    r = run("clean", history, "-o", out)
    assert r.returncode == 1 and "o.report.json exists" in r.stderr and not out.exists()
    r = run("clean", history, "-o", out, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert read_jsonl(out) and json.loads(report_path(out).read_text())["total"] == 60
    out.unlink()                                  # a killed run's report, with no output beside it: replaced
    report_path(out).write_text('{"step": "clean", "total": 3}')
    r = run("clean", history, "-o", out)
    assert r.returncode == 0 and json.loads(report_path(out).read_text())["total"] == 60, r.stderr

def test_cli_never_writes_over_its_input(history, tmp_path):
    before = history.read_bytes()
    for args in (["-o", history], ["-o", history, "--overwrite"], ["-o", tmp_path / "x.jsonl", "--report", history, "--overwrite"]):
        r = run("clean", history, *args)
        assert r.returncode == 1 and "is the input" in r.stderr and "Traceback" not in r.stderr
    assert history.read_bytes() == before

def test_cli_output_is_a_folder(history, tmp_path):
    (tmp_path / "dir").mkdir()
    r = run("clean", history, "-o", tmp_path / "dir")
    assert r.returncode == 1 and "is a folder" in r.stderr and list((tmp_path / "dir").iterdir()) == []

def test_redaction_in_processes_is_the_same():
    "Redacting in 2 worker processes (chunks) gives the same copies, counts, examples and untouched objects as in one."
    import sys
    from chatft.clean import redact_conversations, workers_for, PARALLEL_FROM
    from chatft.synth import synthetic_conversations
    if sys.platform != "linux": pytest.skip("worker processes are forked, on Linux only")
    convs = synthetic_conversations(450, seed=11)
    one, rep1 = redact_conversations(convs, workers=1)
    two, rep2 = redact_conversations(convs, workers=2)
    assert one == two and rep1.notes == rep2.notes and rep1.notes["redactions"]
    assert [a is b for a, b in zip(one, convs)] == [a is b for a, b in zip(two, convs)]   # unchanged ones are the originals
    assert workers_for(PARALLEL_FROM - 1) == 1 and workers_for(10, workers=3) == 3

# ---- leaving a kind in -----------------------------------------------------------------------------
def test_keep_private_leaves_one_kind_and_says_so(tmp_path):
    "`--keep-private PHONE`: phone numbers stay, e-mails do not; the report names what was left in, and warns."
    talk = Conversation("a", [dict(role="user", content="call +44 20 7946 0958 or mail jo.smith@example.com"),
                              dict(role="assistant", content="Noted, I will.")])
    out, rep = clean([talk], keep_private=["PHONE"], dedup=False)
    assert out[0].messages[0]["content"] == "call +44 20 7946 0958 or mail [EMAIL]"
    assert rep.notes["left in (not redacted)"] == ["PHONE"] and "PHONE" not in rep.notes["redactions"]
    write_jsonl([talk], tmp_path/"in.jsonl")
    res = subprocess.run([CHATFT, "clean", str(tmp_path/"in.jsonl"), "-o", str(tmp_path/"out.jsonl"), "--no-dedup",
                          "--keep-private", "PHONE"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "PHONE left in (not redacted)" in res.stdout
    assert read_jsonl(tmp_path/"out.jsonl")[0].messages == out[0].messages
    bad = subprocess.run([CHATFT, "clean", str(tmp_path/"in.jsonl"), "-o", str(tmp_path/"x.jsonl"), "--keep-private",
                          "PHONES"], capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice: 'PHONES'" in bad.stderr and not (tmp_path/"x.jsonl").exists()
