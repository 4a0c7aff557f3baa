"""Held-out means never trained on: a leaky split is repaired by `prepare` and flagged by the evaluation, and a run
on data it can learn by heart stops early and keeps its best step (issue: an honest proof)."""
import json
from pathlib import Path
import pytest, torch
from datasets import DatasetDict
from chatft.core import Conversation, ChatftError
from chatft.models import TINY_MODEL, load_tokenizer
from chatft.dataset import prepare, tokenize_conversations, seen_in_training, split_conversations, STRETCH_CHARS
from chatft.train import plan_training, train, load_run, load_for_training, split_loss, why_stopped
from chatft.evaluate import evaluate, seen_replies, heldout_examples

ANSWERS = [f"Answer {i}: cook the {food} at {t} degrees for {m} minutes, then rest it under foil before you slice it."
           for i, (food, t, m) in enumerate([("chicken", 200, 45), ("salmon", 180, 15), ("lamb", 190, 70), ("tofu", 220, 25),
                                              ("squash", 210, 35), ("pork", 170, 90), ("duck", 160, 120), ("beef", 230, 20)])]

def conv(i, reply, system=None):
    return Conversation(id=f"c{i:02d}", create_time=1.7e9 + i, system=system,
                        messages=[dict(role="user", content=f"question number {i} about dinner"), dict(role="assistant", content=reply)])

def leaky(n=40):
    "`n` conversations with their own replies, then 8 newer ones that copy a training reply (some with an edit)."
    own = [conv(i, f"Reply {i}: " + " ".join(f"w{i}x{k}" for k in range(12))) for i in range(n)]
    copies = [conv(n + k, ANSWERS[k % 4] if k % 2 else ANSWERS[k % 4].replace("Answer", "So, answer")) for k in range(8)]
    trained = [conv(1000 + k, ANSWERS[k]) for k in range(4)]          # the originals, older than everything
    for c in trained: c.create_time = 1.6e9 + int(c.id[1:])
    return own + copies + trained

@pytest.fixture(scope="module")
def tok(): return load_tokenizer(TINY_MODEL)

def test_split_moves_replies_seen_in_training():
    convs = leaky()
    train, test, moved = split_conversations(convs, test_size=0.2)
    copies = {c.id for c in convs[40:48]}
    assert copies <= set(moved) and not copies & {c.id for c in test}, moved
    assert all(w.startswith(("a reply word for word", "a reply shares")) for w in moved.values())
    assert len(test) == round(0.2*len(convs))                          # the next most recent were held out instead
    assert seen_in_training(test, train) == {}                         # nothing held out repeats training text
    train_text = " ".join(m["content"].lower() for c in train for m in c.messages)
    for c in test:                                                     # checked by hand too: no 50 characters in common
        r = c.messages[-1]["content"].lower()
        assert not any(r[k:k+STRETCH_CHARS] in train_text for k in range(len(r) - STRETCH_CHARS + 1)), r

def test_split_with_an_id_twice():
    "Two conversations with one id (two exports merged): each is its own text, neither hides the other's."
    own = [conv(i, f"Reply {i}: " + " ".join(f"w{i}x{k}" for k in range(12))) for i in range(40)]
    original = conv(1000, ANSWERS[3]); original.create_time, original.id = 1.6e9, "dup"   # trained: the oldest
    same_id = conv(60, "A reply of its own, in words no other conversation has: " + "zq " * 20); same_id.id = "dup"
    edited = conv(61, ANSWERS[3].replace("Answer", "So, answer"))                       # shares 90 characters
    train, test, moved = split_conversations(own + [original, same_id, edited], test_size=2/43, rounds=1)
    assert "c61" in moved and moved["c61"].startswith("a reply shares") and moved["c61"].endswith("with dup"), moved
    assert [c.id for c in test] == ["dup"] and test[0] is same_id        # not found in itself

def test_prepare_reports_what_it_moved(tok):
    dsd, rep = prepare(leaky(), tok, max_length=128, test_size=0.2)
    assert "8 with a reply seen in training" in rep.notes["moved from test to train"], rep.notes
    assert len(rep.notes["moved"]) == 8
    assert not {f"c{i}" for i in range(40, 48)} & set(dsd["test"]["id"])

def test_evaluation_flags_a_leaky_split(tok):
    "A split made by hand that leaks: the evaluation names every seen reply and scores only the others."
    convs = leaky()
    copies, fresh = convs[40:48], convs[36:40]
    dsd = DatasetDict(train=tokenize_conversations(convs[:36] + convs[48:], tok, 128),
                      test=tokenize_conversations(copies + fresh, tok, 128))
    seen = dict(zip(dsd["test"]["id"], seen_replies(heldout_examples(dsd["test"], tok), dsd["train"], tok)))
    assert all(seen[c.id] for c in copies) and not any(seen[c.id] for c in fresh), seen
    model = load_for_training(plan_training(TINY_MODEL, dsd, max_length=128, hardware="cpu"), verbose=False)
    ev = evaluate(model, tok, dsd, n=20, max_new_tokens=4, probe=0)
    assert ev.settings["seen_in_training"] == 8 and ev.settings["heldout_replies"] == 12, ev.settings
    assert ev.settings["n"] == 4 and set(ev.table.id) == {c.id for c in fresh}
    assert ev.settings["heldout_conversations"] == 4                    # the loss is computed on the clean ones only
    assert "8 repeat training text" in ev.notes()[0]
    all_seen = DatasetDict(train=dsd["train"], test=tokenize_conversations(copies, tok, 128))
    with pytest.raises(ChatftError, match="repeat training text"): evaluate(model, tok, all_seen, n=4, max_new_tokens=4, probe=0)

def test_memorising_run_stops_early_and_keeps_its_best_step(tok, tmp_path):
    """Trained on one reply said 18 times, a model first learns the template (held-out loss falls), then only that reply
    (held-out loss, on other replies, rises): training stops after `patience` evaluations and the run keeps the best."""
    train_c = [conv(i, "ok, noted.") for i in range(18)]
    test_c = [conv(100 + i, f"Sure: {w} is on the list for {d}.") for i, (w, d) in enumerate([("milk", "monday"), ("bread", "friday"),
                                                                                           ("rice", "sunday")])]
    dsd = DatasetDict(train=tokenize_conversations(train_c, tok, 128), test=tokenize_conversations(test_c, tok, 128))
    plan = plan_training(TINY_MODEL, dsd, hardware="cpu", max_length=128, precision="fp32", lr=5e-3, lr_scheduler="constant",
                         warmup_ratio=0.0, max_steps=80, eval_steps=2, patience=3, logging_steps=1, save_steps=10**6, seed=0,
                         target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head"])
    tr = train(plan, dsd, tmp_path/"run", tokenizer=tok, live=False, progress_bar=False)
    s = tr.state
    evals = {h["step"]: h["eval_loss"] for h in s.log_history if "eval_loss" in h}
    print(why_stopped(s, plan), evals)
    assert s.global_step < 80 and getattr(s, "stopped_early", None), evals             # it stopped itself
    assert s.best_global_step < s.global_step and evals[s.best_global_step] == min(evals.values())
    assert max(v for k, v in evals.items() if k > s.best_global_step) > evals[s.best_global_step]
    model, tok2, plan2 = load_run(tmp_path/"run")                                       # what was saved is the best step
    saved = split_loss(model, dsd, plan2, tok2)
    assert abs(saved - s.best_metric) <= 0.01*s.best_metric, (saved, s.best_metric)
    metrics = json.loads((tmp_path/"run"/"metrics.json").read_text())
    assert metrics["best step"] == s.best_global_step and "stopped early" in metrics["stopped"]

def test_split_compares_only_what_could_be_near(monkeypatch):
    """The split's test for near duplicates sketches and compares only the conversations that `could_be_near` one on the
    other side, and finds the same ones as comparing every conversation: the same train, test and moves."""
    import dataclasses, chatft.dataset as D
    from chatft.synth import synthetic_conversations
    own = synthetic_conversations(500, seed=5)
    def copy(c, k, words):                       # a newer copy of `c` with `words` of its last reply changed
        msgs = [dict(m) for m in c.messages]
        w = msgs[-1]["content"].split(); w[:words] = ["changed"] * min(words, len(w))
        msgs[-1]["content"] = " ".join(w)
        return dataclasses.replace(c, id=f"copy{k}", messages=msgs, create_time=2e9 + k, update_time=2e9 + k)
    convs = own + [copy(c, k, 1 + 20 * (k % 3)) for k, c in enumerate(own[::10])]     # near or not, by how much changed
    sizes, orig = [], D.near_duplicates
    def spy(texts, threshold, **kw): sizes.append((len(texts), len(kw["against"]))); return orig(texts, threshold, **kw)
    monkeypatch.setattr(D, "near_duplicates", spy)
    train, test, moved = split_conversations(convs)
    every = D._repeats
    monkeypatch.setattr(D, "_repeats", lambda *a: every(*a[:6]))                      # without the keys: every text
    train2, test2, moved2 = split_conversations(convs)
    assert [c.id for c in train] == [c.id for c in train2] and [c.id for c in test] == [c.id for c in test2]
    assert list(moved.items()) == list(moved2.items())
    assert sum(w.startswith("near duplicate of") for w in moved.values()) >= 10, moved
    assert sizes[0][0] < 55 and sizes[0][1] < 100 and sizes[-1][1] > 400, sizes      # few sketched, then all
