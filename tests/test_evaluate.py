"Tests of chatft.evaluate that need a trained run, a subprocess or widgets: metrics, stop rate, probe, A/B, `chatft eval`."
import json, os, subprocess, sys
from pathlib import Path
import pytest
from chatft.core import ChatftError
from chatft.models import TINY_MODEL, DEMO_MODEL, load_tokenizer, load_model
from chatft import evaluate as E

SCRIPT = Path(sys.executable).parent/"chatft"


@pytest.fixture(scope="module")
def tok(): return load_tokenizer(TINY_MODEL)


def _train_run(folder:Path, model:str, steps:int, n:int=16, lr:float=1e-3)->Path:
    "A run folder trained for `steps` steps on `n` synthetic conversations (`train` keeps its data in run/data)."
    from chatft.synth import synthetic_conversations
    from chatft.dataset import prepare
    from chatft.train import plan_training, train
    t = load_tokenizer(model)
    dsd, rep = prepare(synthetic_conversations(n, seed=0), t, max_length=256, test_size=0.25)
    plan = plan_training(model, dsd, max_steps=steps, lr=lr, lr_scheduler="constant", warmup_ratio=0.0, lora_dropout=0.0,
                         grad_accum=1, eval_steps=10**6, save_steps=10**6, logging_steps=1)
    run = folder/"run"
    train(plan, dsd, run, tokenizer=t, report=rep, live=False, final_eval=False, progress_bar=False)
    return run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory): return _train_run(tmp_path_factory.mktemp("tiny"), TINY_MODEL, steps=2, lr=1e-2)


# --- metrics on known strings ---------------------------------------------------------------------------

def test_identical_texts_score_100():
    s = "Cooked rice keeps three to four days in the fridge, in a closed box."
    for k, v in E.overlap(s, s).items(): assert v == pytest.approx(100, abs=0.01), k


def test_disjoint_texts_score_near_0():
    for k, v in E.overlap("Quantum chromodynamics governs gluons.", "Bake the loaf at two hundred degrees.").items():
        assert v < 15, (k, v)


def test_partial_overlap_is_between_and_ordered():
    ref = "Cooked rice keeps three to four days in the fridge, in a closed box."
    close, far = E.overlap("Cooked rice keeps four days in the fridge.", ref), E.overlap("Rice is a grain.", ref)
    for k in close: assert far[k] < close[k] < 100, k


def test_rouge_counts_non_ascii_words():
    s = "Gekochter Reis hält sich drei bis vier Tage im Kühlschrank."
    assert E.overlap(s, s)["rouge_l"] == pytest.approx(100)
    assert E.overlap("Кот сидит на ковре", "Кот сидит на окне")["rouge_l"] == pytest.approx(75)


def test_repetition_and_length():
    assert E.repetition("one two three four")["distinct_2"] == 1.0
    loop = E.repetition("I can help. I can help. I can help. I can help.")
    assert loop["distinct_2"] < 0.5 and loop["longest_repeat"] >= 6
    assert E.length_ratio("a b c", "a b c d e f") == pytest.approx(0.5)


def test_reply_spans_and_examples(tok):
    from chatft.template import render_example
    msgs = [dict(role="user", content="what is two plus two"), dict(role="assistant", content="Four."),
            dict(role="user", content="and three plus three"), dict(role="assistant", content="Six.")]
    ex = render_example(msgs, tok)
    from datasets import Dataset
    ds = Dataset.from_dict(dict(id=["c"], input_ids=[ex["input_ids"]], labels=[ex["labels"]]))
    got = E.heldout_examples(ds, tok)
    assert [g["real"] for g in got] == ["Four.", "Six."]
    assert "two plus two" in got[0]["prompt"] and "three plus three" in got[1]["prompt"]
    assert "assistant" not in got[0]["prompt"] and "<|im" not in got[0]["prompt"]
    # the prompt is the training render up to the reply: it ends with the cue for the assistant's turn
    from chatft.template import inference_prompt
    assert got[0]["prompt_ids"] == inference_prompt(msgs[:1], tok)


# --- stop rate ------------------------------------------------------------------------------------------

def _always(token_id:int):
    "The tiny model with an output layer that always predicts `token_id`."
    import torch
    m = load_model(TINY_MODEL)
    head = torch.nn.Linear(m.config.hidden_size, m.config.vocab_size, bias=True)
    torch.nn.init.zeros_(head.weight); torch.nn.init.zeros_(head.bias)
    with torch.no_grad(): head.bias[token_id] = 10.0
    m.lm_head = head
    return m


def test_stop_rate_never_and_always(tok):
    from chatft.template import inference_prompt
    prompts = [inference_prompt([dict(role="user", content=q)], tok) for q in ("hi", "how are you today", "tell me a story")]
    eot = tok.convert_tokens_to_ids("<|im_end|>")
    never = E.generate_replies(_always(tok.convert_tokens_to_ids("Ġthe")), tok, prompts, max_new_tokens=6, batch_size=2)
    always = E.generate_replies(_always(eot), tok, prompts, max_new_tokens=6, batch_size=2)
    assert [g["stopped"] for g in never] == [False]*3 and all(g["tokens"] == 6 for g in never)
    assert [g["stopped"] for g in always] == [True]*3 and all(g["tokens"] == 0 for g in always)
    table = E.score_table([dict(id=str(i), prompt="hi there friend", real="hello") for i in range(3)], never, always)
    s = E.summarize(table)
    assert s.loc["stop rate", "base"] == 0.0 and s.loc["stop rate", "tuned"] == 1.0


def test_batched_generation_keeps_order_and_matches_single(tok):
    from chatft.template import inference_prompt
    m = load_model(TINY_MODEL)
    qs = ["hi", "what is the weather like in a small town by the sea in late autumn", "ok then"]
    prompts = [inference_prompt([dict(role="user", content=q)], tok) for q in qs]
    batched = E.generate_replies(m, tok, prompts, max_new_tokens=8, batch_size=3)
    single = [E.generate_replies(m, tok, [p], max_new_tokens=8)[0] for p in prompts]
    same = sum(b["text"][:15] == s["text"][:15] for b, s in zip(batched, single))
    assert same >= 2, (batched, single)   # left padding must not change greedy output (a float near-tie may flip one)


# --- regurgitation probe and private data ----------------------------------------------------------------

def test_probe_flags_a_memorised_reply(tok):
    import torch
    from datasets import Dataset
    from chatft.template import render_example
    secret = "Your locker code is 4471 and the spare key is under the blue flowerpot by the back door."
    ex = render_example([dict(role="user", content="tell me my notes"), dict(role="assistant", content=secret)], tok)
    other = render_example([dict(role="user", content="what is rice"), dict(role="assistant", content="A grain.")], tok)
    ds = Dataset.from_dict(dict(id=["notes", "rice"], input_ids=[ex["input_ids"], other["input_ids"]],
                                labels=[ex["labels"], other["labels"]]))
    fresh = E.regurgitation_probe(load_model(TINY_MODEL), tok, ds, max_new_tokens=40)
    assert not fresh.flagged.any()
    m = load_model(TINY_MODEL)
    torch.manual_seed(0)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    ids, labels = torch.tensor([ex["input_ids"]]), torch.tensor([ex["labels"]])
    for _ in range(60):
        opt.zero_grad(); m(input_ids=ids, labels=labels).loss.backward(); opt.step()
    probe = E.regurgitation_probe(m.eval(), tok, ds, max_new_tokens=40)
    row = probe.set_index("id").loc["notes"]
    assert row.flagged and row.longest >= 50


def test_pii_scan_reports_types_never_values():
    counts = E.pii_scan(["write to jo.doe@example.org", "card 4111 1111 1111 1111", "call me later"])
    assert counts == {"EMAIL": 1, "CARD": 1}
    lines = E.pii_warnings(counts)
    assert len(lines) == 2 and not any("example.org" in l or "4111" in l for l in lines)


# --- A/B panel --------------------------------------------------------------------------------------------

def test_ab_panel_driven_from_code(tmp_path):
    import pandas as pd
    table = pd.DataFrame([dict(prompt=f"q{i}", real=f"r{i}", base=f"base answer {i}", tuned=f"tuned answer {i}") for i in range(5)])
    path = tmp_path/"ab_ratings.jsonl"
    p = E.ABPanel(table, path, seed=3)
    shown = []
    for k in range(5):
        assert "base answer" in p.html.value and "tuned answer" in p.html.value
        assert "base" not in p.html.value.replace("base answer", "")          # unlabelled
        shown.append(p.a_is)
        if k < 3: p.buttons["A" if p.a_is == "tuned" else "B"].click()        # prefer tuned
        elif k == 3: p.buttons["A" if p.a_is == "base" else "B"].click()      # prefer base once
        else: p.buttons["tie"].click()
    assert len(set(shown)) == 2                                                 # both orders occur
    saved = E.read_ratings(path)
    assert [r["winner"] for r in saved] == ["tuned"]*3 + ["base", "tie"]
    assert all(r["chosen"].startswith(r["winner"]) for r in saved if r["winner"] != "tie")
    assert all(p.buttons[k].disabled for k in p.buttons) and "All rated" in p.html.value
    wr = E.win_rate(saved)
    assert wr["win_rate"] == pytest.approx(3.5/5) and wr["low"] < 0.7 < wr["high"]
    again = E.ABPanel(table, path, seed=3)                                      # ratings are kept across sessions
    assert len(again.ratings) == 5 and "5 rated" in again.status.value


def test_win_rate_interval_shrinks_with_more_ratings():
    few = E.win_rate([dict(winner="tuned")]*6 + [dict(winner="base")]*4)
    many = E.win_rate([dict(winner="tuned")]*60 + [dict(winner="base")]*40)
    assert few["win_rate"] == pytest.approx(many["win_rate"])
    assert many["high"] - many["low"] < few["high"] - few["low"]


# --- general ability --------------------------------------------------------------------------------------

def test_general_questions_ship_with_the_package():
    qs = E.general_questions()
    assert len(qs) >= 20 and all(q["question"].endswith("?") and q["answers"] for q in qs)


def test_general_check_counts_lost_answers(tok):
    import pandas as pd
    m = _always(tok.convert_tokens_to_ids("ĠParis"))
    qs = [dict(question="What is the capital of France?", answers=["Paris"]), dict(question="What is 2+2?", answers=["4"])]
    df = E.general_check(_always(tok.convert_tokens_to_ids("Ġthe")), tok, base=m, questions=qs, max_new_tokens=3)
    assert df.base_right.tolist() == [True, False] and df.lost.tolist() == [True, False]


# --- the whole evaluation and `chatft eval` -------------------------------------------------------------

def test_evaluate_run_writes_files_and_card(tiny_run, tmp_path):
    ev = E.evaluate_run(tiny_run, n=4, max_new_tokens=8, probe=2)
    for f in ("eval.json", "eval.md", "eval_metrics.png", "eval_lengths.png"): assert (tiny_run/f).exists(), f
    data = json.loads((tiny_run/"eval.json").read_text())
    assert set(data["summary"]["held-out loss"]) == {"base", "tuned", "difference"}
    assert len(data["examples"]) == 4 and len(data["probe"]) == 2
    assert {"chrF++ (corpus)", "stop rate", "length_ratio (median)", "distinct_2 (mean)"} <= set(data["summary"])
    E.evaluate_run(tiny_run, n=2, max_new_tokens=4, probe=0)
    assert (tiny_run/"README.md").read_text().count("## Evaluation") == 1                 # replaced, not appended twice
    assert "held-out loss" in str(ev) and "base" in ev.summary_text()


def test_eval_cli_errors_are_clear(tiny_run, tmp_path):
    with pytest.raises(ChatftError, match="not a chatft run folder"): E.eval_cli([str(tmp_path)])
    bare = tmp_path/"bare"
    import shutil
    shutil.copytree(tiny_run, bare, ignore=shutil.ignore_patterns("data"))
    with pytest.raises(ChatftError, match="no held-out data"): E.eval_cli([str(bare)])
    from datasets import Dataset, DatasetDict
    from chatft.dataset import save_prepared
    wrong = DatasetDict(train=Dataset.from_dict(dict(id=["a"], input_ids=[[1, 2, 3]], labels=[[-100, 2, 3]])),
                        test=Dataset.from_dict(dict(id=["b"], input_ids=[[1, 2, 70000]], labels=[[-100, 2, 70000]])))
    save_prepared(wrong, tmp_path/"wrong")
    with pytest.raises(ChatftError, match="another model"): E.eval_cli([str(tiny_run), "--data", str(tmp_path/"wrong")])
    other = DatasetDict(train=wrong["train"], test=Dataset.from_dict(dict(id=["b"], input_ids=[[1, 5, 6, 7]], labels=[[-100, 5, 6, 7]])))
    save_prepared(other, tmp_path/"other")
    with pytest.raises(ChatftError, match="end-of-turn"): E.eval_cli([str(tiny_run), "--data", str(tmp_path/"other")])
    with pytest.raises(ChatftError, match="not a prepared dataset"): E.eval_cli([str(tiny_run), "--data", str(tmp_path)])


def test_find_data_order(tiny_run, tmp_path):
    "--data DIR first, then RUN/data, then the prepared folder named in the run's data report."
    import shutil
    from chatft.dataset import load_prepared
    assert E.find_data(tiny_run) == tiny_run/"data"
    assert load_prepared(tiny_run/"data")["test"]["id"] and (tiny_run/"data"/"report.json").exists()
    bare = tmp_path/"bare"
    shutil.copytree(tiny_run, bare, ignore=shutil.ignore_patterns("data"))
    (bare/"data_report.json").write_text(json.dumps([dict(step="prepare", notes={"from": str(tiny_run/"data")})]))
    assert E.find_data(bare) == tiny_run/"data"
    E.attach_data(bare, load_prepared(tiny_run/"data"))
    assert E.find_data(bare) == bare/"data"
    E.attach_data(bare, load_prepared(tiny_run/"data"))                               # the run's own copy: replaced
    assert E.find_data(bare, tiny_run/"data") == tiny_run/"data"


def test_chatft_eval_on_a_train_run_needs_no_data(tmp_path):
    "`chatft train` keeps the prepared splits it trained on in RUN/data, so `chatft eval RUN` needs no --data."
    from chatft.core import write_jsonl
    from chatft.synth import synthetic_conversations
    from chatft.dataset import load_prepared
    from chatft.train import load_data
    convs = write_jsonl(synthetic_conversations(12, seed=0), tmp_path/"convs.jsonl")
    run, env = tmp_path/"run", {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    r = subprocess.run([str(SCRIPT), "train", str(convs), "--model", TINY_MODEL, "-o", str(run), "--max-steps", "1",
                        "--max-length", "256", "--no-clean"], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    saved, (again, _) = load_prepared(run/"data"), load_data(convs, load_tokenizer(TINY_MODEL), max_length=256, clean=False, verbose=False)
    for split in ("train", "test"): assert saved[split]["id"] == again[split]["id"] and len(saved[split]), split
    assert E.find_data(run) == run/"data"
    r = subprocess.run([str(SCRIPT), "eval", str(run), "--n", "2", "--max-new-tokens", "4", "--probe", "0"],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "held-out loss" in r.stdout and json.loads((run/"eval.json").read_text())["settings"]["data"] == str(run/"data")


def _registered()->bool:
    from chatft.cli import COMMANDS
    return "eval" in COMMANDS


@pytest.mark.skipif(not _registered(), reason="`eval` is not yet in chatft.cli.COMMANDS")
def test_console_script_bad_run_is_one_line(tmp_path):
    r = subprocess.run([str(SCRIPT), "eval", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "not a chatft run folder" in r.stderr


@pytest.mark.slow
def test_chatft_eval_on_a_demo_run(tmp_path, capsys):
    "The demo model trained a few steps; `chatft eval` prints base, tuned and difference and writes the files."
    run = _train_run(tmp_path, DEMO_MODEL, steps=4, n=24)
    out = tmp_path/"eval"
    args = [str(run), "--n", "6", "--max-new-tokens", "24", "--probe", "4", "-o", str(out)]
    if _registered():
        r = subprocess.run([str(SCRIPT), "eval", *args], capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
        assert r.returncode == 0, r.stderr[-2000:]
        text = r.stdout
    else:
        assert E.eval_cli(args) == 0
        text = capsys.readouterr().out
    assert "metric" in text and "base" in text and "tuned" in text and "difference" in text
    assert "held-out loss" in text and "chrF++ (corpus)" in text and "stop rate" in text
    data = json.loads((out/"eval.json").read_text())
    s = data["summary"]
    assert s["held-out loss"]["tuned"] < s["held-out loss"]["base"]                  # training helped on held-out data
    assert 0 <= s["stop rate"]["base"] <= 1 and len(data["examples"]) == 6
    assert "## Evaluation" in (run/"README.md").read_text()
