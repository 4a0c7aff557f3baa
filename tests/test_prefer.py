"""chatft.prefer on hand-made exports (tests/fixtures/prefer, see tests/fixtures/README.md) whose pairs were worked out
by hand, through the real console script, and (slow) a DPO run of the tiny model that must learn a learnable preference."""
import json, subprocess, sys, zipfile
from pathlib import Path
import pytest
from chatft.export import read_export
from chatft.core import write_jsonl
from chatft.prefer import export_pairs, preference_split

FIX = Path(__file__).parent/"fixtures"
PREFER = FIX/"prefer"
CHATFT = Path(sys.executable).parent/"chatft"

def U(t): return {"role": "user", "content": t}
def A(t): return {"role": "assistant", "content": t}
def S(t): return {"role": "system", "content": t}

TENT = [S("Answer briefly."), U("Which tent for two people in Scotland?")]
EXPECTED = {   # id -> (source, prompt, chosen, rejected)
    # a plain regeneration: the kept answer is chosen
    "pref-0001:1:0": ("regeneration", [U("How long should bread dough rise?")],
                      "Until it doubles: usually one to two hours at room temperature.", "About an hour."),
    # thumbs down on the abandoned answer: the kept one is chosen, by feedback; the instructions lead the prompt
    "pref-0002:1:0": ("feedback", TENT, "A two-person tunnel tent with a 3000 mm flysheet.", "Any tent is fine."),
    # thumbs up on the abandoned answer: it is chosen over the kept one
    "pref-0002:3:0": ("feedback", TENT + [A("A two-person tunnel tent with a 3000 mm flysheet."), U("What about midges?")],
                      "Bring a head net and a repellent with DEET or icaridin.", "Pitch in a breezy spot."),
    # the kept answer came after a search (tool call and result): the branch is at the question
    "pref-0003:1:0": ("regeneration", [U("Weather in Oslo tomorrow?")], "Cloudy, around 12 °C.", "I cannot browse the web."),
}
SKIPPED = [{"id": "pref-0001:3:0", "reason": "interrupted answer"}, {"id": "pref-0001:3:1", "reason": "error reply"},
           {"id": "pref-0001:5:0", "reason": "same text"},            # only the spacing differs
           {"id": "pref-0004:1:0", "reason": "both answers rated the same"}, {"id": "pref-0004:3:0", "reason": "empty answer"}]

def got(pairs): return {p["id"]: (p["source"], p["prompt"], p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in pairs}

def check(pairs, report):
    assert got(pairs) == EXPECTED
    assert all(p["chosen"][0]["role"] == p["rejected"][0]["role"] == "assistant" for p in pairs)
    assert report.kept == 4 and sorted(report.skipped, key=lambda s: s["id"]) == SKIPPED
    n = report.notes
    assert n["edited question (an abandoned user message: not a preference pair)"] == 1      # p2's edited question
    assert n["feedback without a message id"] == 1 and n["feedback with an unknown rating (meh)"] == 1
    assert n["thumbs read"] == 5 and n["conversations"] == 5
    assert n["pairs from regeneration"] == 2 and n["pairs from feedback"] == 2

def test_hand_made_export_gives_exactly_the_expected_pairs():
    check(*export_pairs(PREFER))

def test_the_same_from_a_zip_and_from_conversations_json(tmp_path):
    z = tmp_path/"export.zip"
    with zipfile.ZipFile(z, "w") as f:
        for p in PREFER.glob("*.json"): f.write(p, p.name)
    check(*export_pairs(z))
    check(*export_pairs(PREFER/"conversations.json"))      # message_feedback.json beside it is found

def test_a_folder_that_holds_the_export_zip(tmp_path):
    "A downloads folder or a Kaggle dataset: the export's ZIP in a folder beside other files is read."
    z = tmp_path/"downloads"/"chatgpt"/"export.zip"
    z.parent.mkdir(parents=True)
    with zipfile.ZipFile(z, "w") as f:
        for p in PREFER.glob("*.json"): f.write(p, p.name)
    (tmp_path/"downloads"/"notes.txt").write_text("not an export")
    check(*export_pairs(tmp_path/"downloads"))

def test_pairs_are_oldest_first_and_split_by_conversation_time():
    pairs, _ = export_pairs(PREFER)
    assert [p["time"] for p in pairs] == sorted(p["time"] for p in pairs)
    dsd = preference_split(pairs, test_size=0.34)
    assert set(dsd["test"]["id"]) == {"pref-0003:1:0"}                     # the newest conversation is held out
    assert dsd["train"].column_names == ["id", "source", "prompt", "chosen", "rejected"]

def test_from_chatft_jsonl_meta(tmp_path):
    "Without the tree, the reader's meta (alternatives, thumbs on the thread) still gives pairs."
    convs, _ = read_export(FIX/"chatgpt", progress=False)
    pairs, report = export_pairs(write_jsonl(convs, tmp_path/"convs.jsonl"))
    by_conv = {p["conversation"]: p for p in pairs}
    sour = by_conv["f1c70001-0000-4000-8000-000000000001"]         # thumbs up on the kept answer
    assert (sour["source"], sour["chosen"][0]["content"], sour["rejected"][0]["content"]) == (
        "feedback", "When it doubles within four to six hours and a spoonful floats in water.", "When it doubles within six hours of a feed.")
    assert len(sour["prompt"]) == 5
    plant = by_conv["f1c70001-0000-4000-8000-000000000004"]
    assert (plant["source"], plant["rejected"][0]["content"]) == ("regeneration", "Lots of light.")

def test_redaction_is_on_by_default(tmp_path):
    from chatft.synth import synthetic_export
    export = synthetic_export(tmp_path, n=60)
    text = lambda ps: json.dumps(ps)
    plain, _ = export_pairs(export, redact=False)
    red, report = export_pairs(export)
    assert "sk-proj-" in text(plain) and "sk-proj-" not in text(red) and "[API_KEY]" in text(red)
    assert report.notes["redactions"]["API_KEY"] >= 1

def run(*args): return subprocess.run([str(CHATFT), "prefer", *map(str, args)], capture_output=True, text=True)

def test_cli_writes_pairs_and_report_and_reads_them_back(tmp_path):
    res = run(PREFER, "-o", tmp_path/"pairs.jsonl")
    assert res.returncode == 0, res.stderr
    assert "wrote 4 pairs" in res.stdout and "skipped: interrupted answer" in res.stdout
    rows = [json.loads(l) for l in (tmp_path/"pairs.jsonl").read_text().splitlines()]
    assert got(rows) == EXPECTED
    rep = json.loads((tmp_path/"pairs.report.json").read_text())
    assert (rep["total"], rep["kept"]) == (9, 4)
    again = run(tmp_path/"pairs.jsonl", "-o", tmp_path/"again.jsonl")                  # a pairs file is an input too
    assert again.returncode == 0 and (tmp_path/"again.jsonl").read_text() == (tmp_path/"pairs.jsonl").read_text()

@pytest.mark.parametrize("args, words", [(["missing-export", "-o", "p.jsonl"], "no such file"),
                                         (["{fix}", "--run", "{tmp}", "-o", "{tmp}/r2"], "not a chatft run folder"),
                                         (["{fix}/conversations.json", "-o", "{fix}/conversations.json"], "that is the input")])
def test_cli_errors_are_one_line(tmp_path, args, words):
    res = run(*[a.format(fix=PREFER, tmp=tmp_path) for a in args])
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and words in res.stderr, res.stderr

# --- DPO (slow) -----------------------------------------------------------------------------------------------
WORDS = ["apples", "rivers", "maps", "tea", "bikes", "clocks", "stones", "birds", "lamps", "ships", "coins", "ropes",
         "hills", "bells", "kites", "roads"]

def learnable_pairs(path)->Path:
    "One chosen/rejected pattern for every prompt: the tiny model can learn it from 12 conversations and show it on 4 new ones."
    rows = [dict(id=f"p{i}", conversation=f"c{i}", turn=1, source="test", time=float(i), prompt=[U(f"tell me about {w}")],
                 chosen=[A(f"Gladly: {w} are great.")], rejected=[A(f"Sadly: {w} are awful.")]) for i, w in enumerate(WORDS)]
    return write_jsonl(rows, path)

@pytest.fixture(scope="module")
def sft_run(tmp_path_factory):
    "A tiny SFT run (all-linear LoRA, as `chatft train` makes it), trained two steps."
    from chatft.core import Conversation
    from chatft.models import TINY_MODEL, load_tokenizer
    from chatft.dataset import prepare
    from chatft.train import plan_training, train
    tok = load_tokenizer(TINY_MODEL)
    convs = [Conversation(id=f"c{i}", create_time=1.7e9 + i, messages=[U(f"note {i}"), A("noted.")]) for i in range(8)]
    dsd, rep = prepare(convs, tok, max_length=128, test_size=0.25)
    plan = plan_training(TINY_MODEL, dsd, lora_dropout=0.0, max_length=128, max_steps=2, grad_accum=1, logging_steps=1,
                         eval_steps=10**6, save_steps=10**6)
    run = tmp_path_factory.mktemp("sft")/"run"
    train(plan, dsd, run, tokenizer=tok, report=rep, live=False, progress_bar=False, final_eval=False)
    (run/"system.txt").write_text("You are terse.")
    return run

@pytest.mark.slow
def test_dpo_learns_a_learnable_preference_and_the_run_loads(sft_run, tmp_path):
    pairs = learnable_pairs(tmp_path/"pairs.jsonl")
    out = tmp_path/"run2"
    res = run(pairs, "--run", sft_run, "-o", out, "--test-size", "0.25", "--lr", "5e-3", "--epochs", "2", "--no-redact")
    assert res.returncode == 0, res.stderr[-2000:]
    m = json.loads((out/"metrics.json").read_text())
    assert m["held-out pairs"] == 4 and m["preference accuracy before"] <= 0.5, m
    assert m["preference accuracy after"] == 1.0 and m["per-token margin after"] > m["per-token margin before"] + 0.5, m
    assert m["held-out reward accuracy"] == 1.0
    assert "held-out preference accuracy" in res.stdout
    for f in ("adapter_model.safetensors", "plan.json", "preferences.png", "loss.png", "pairs_test.jsonl", "system.txt", "data"):
        assert (out/f).exists(), f
    assert not (out/"ref").exists()                                         # only the trained adapter is saved
    from chatft.train import load_run
    from chatft.prefer import preference_accuracy
    from datasets import Dataset
    model, tok, plan = load_run(out)
    test = Dataset.from_json(str(out/"pairs_test.jsonl"))
    # the margin was measured in the training process (bf16 autocast where the CPU has it), the reload scores in fp32:
    # the same weights, two precisions (1.1e-3 and 1.8e-3 apart in two runs here); the notebook allows 5e-3 too
    assert abs(preference_accuracy(model, tok, test)["margin"] - m["per-token margin after"]) < 5e-3
    from chatft.chat import load_chat
    from chatft.core import Run
    from chatft.evaluate import find_data
    assert Run(out).system == "You are terse." and find_data(out) == out/"data"
    chat = load_chat(out, device="cpu")
    assert chat is not None

def test_split_moves_held_out_answers_seen_in_training():
    "A held-out conversation whose chosen answer repeats a training pair's (a pasted regeneration) goes to training."
    from chatft.core import Report
    from chatft.prefer import preference_split
    long = "Cook the rice in 1.5 parts water for 12 minutes, then let it rest under the lid for five more."
    def pair(c, t, chosen, rejected):
        return dict(id=f"{c}:1:0", conversation=c, time=t, source="regeneration", prompt=[dict(role="user", content=f"q {c}")],
                    chosen=[dict(role="assistant", content=chosen)], rejected=[dict(role="assistant", content=rejected)])
    pairs = [pair(f"c{i}", i, f"answer {i} about something else entirely", f"worse {i}") for i in range(8)]
    pairs[0] = pair("c0", 0, long, "Boil it.")
    pairs += [pair("late", 100, "As I said: " + long, "No idea."), pair("later", 101, "Fresh words, never seen before.", "Nope.")]
    rep = Report("prefer")
    dsd = preference_split(pairs, test_size=0.2, report=rep)
    assert set(dsd["test"]["id"]) == {"later:1:0"} and "late:1:0" in dsd["train"]["id"]
    assert rep.notes["held-out conversations moved to training (answers seen in training)"] == 1
