"""chatft.chat: streaming equals greedy, end-of-turn and stop strings, history trimming, the adapter switch,
loading errors, the notebook panel, and `chatft chat` driven through a pseudo-terminal and as a one-shot command."""
import os, sys, shutil, subprocess, argparse
from pathlib import Path
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
from chatft.core import ChatftError
from chatft.models import DEMO_MODEL, TINY_MODEL
from chatft.synth import synthetic_conversations
from chatft.chat import (Chat, ChatPanel, Sampling, load_chat, practice_run, SAMPLING, StopCut, cut_at_stop)

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    "A TINY_MODEL run trained hard enough (lr 1e-2, 10 steps) that its adapter visibly changes the answers."
    return practice_run(tmp_path_factory.mktemp("chat")/"run", TINY_MODEL, steps=10, n=16, lr=1e-2, max_length=256)

@pytest.fixture(scope="module")
def tiny_chat(tiny_run): return load_chat(tiny_run, device="cpu")

@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    "A demo-model run: 3 steps at lr 1e-3 are enough to change its greedy answers (about a minute on a CPU)."
    return practice_run(tmp_path_factory.mktemp("chat")/"demo-run", DEMO_MODEL, steps=3, n=16, max_length=256)

@pytest.fixture(scope="module")
def demo_chat(): return load_chat(DEMO_MODEL, device="cpu")

QUESTION = [dict(role="user", content="decline a meeting about the boiler nicely")]
MULTI = [dict(role="user", content="hi"), dict(role="assistant", content="Hello! How can I help?"),
         dict(role="user", content="name three fruits")]

# --- streaming, stopping ---

@pytest.mark.parametrize("which", ["tiny_chat", "demo_chat"])
def test_stream_equals_greedy(which, request):
    chat = request.getfixturevalue(which)
    for msgs in (QUESTION, MULTI):
        full = chat.reply(msgs, max_new_tokens=24)
        pieces = list(chat.reply(msgs, stream=True, max_new_tokens=24))
        assert len(pieces) > 1 or len(full) < 3
        assert "".join(pieces) == full

def test_sampling_with_seed_is_reproducible(demo_chat):
    kw = dict(max_new_tokens=16, temperature=0.9, top_p=0.95, top_k=40, seed=3)
    a = demo_chat.reply(QUESTION, **kw)
    assert a == demo_chat.reply(QUESTION, **kw) == "".join(demo_chat.reply(QUESTION, stream=True, **kw))

def test_stops_at_end_of_turn(demo_chat):
    "The reply ends with the template's end-of-turn token, long before max_new_tokens; without it the model runs on."
    import torch
    ids = torch.tensor([demo_chat.prompt([dict(role="user", content="hi")], 200)])
    cfg = demo_chat._generation(Sampling(200), ())
    out = demo_chat.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=cfg)[0, ids.shape[1]:]
    eot = demo_chat.tokenizer.convert_tokens_to_ids(demo_chat.end_of_turn)
    assert demo_chat.end_of_turn == "<|im_end|>" and out[-1].item() == eot and len(out) < 200
    text = demo_chat.reply([dict(role="user", content="hi")], max_new_tokens=200)
    assert "<|im_end|>" not in text and "<|im_start|>" not in text
    no_eot = Chat(demo_chat.model, demo_chat.tokenizer)
    no_eot.stop_ids = [demo_chat.tokenizer.convert_tokens_to_ids("<|endoftext|>")]
    longer = no_eot.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                   generation_config=no_eot._generation(Sampling(len(out)+20), ()))[0, ids.shape[1]:]
    assert len(longer) > len(out)

def test_stop_strings_cut_stream_and_reply(demo_chat):
    full = demo_chat.reply(QUESTION, max_new_tokens=32)
    word = full.split()[2]
    cut = demo_chat.reply(QUESTION, max_new_tokens=32, stop=(word,))
    assert word not in cut and full.startswith(cut) and len(cut) < len(full)
    assert "".join(demo_chat.reply(QUESTION, stream=True, max_new_tokens=32, stop=(word,))) == cut

def test_stopcut_never_shows_part_of_a_stop_string():
    c = StopCut(["<END>"])
    shown = [c.feed(p) for p in ["ab<", "E", "N", "D> more"]]
    assert shown == ["ab", "", "", ""] and c.done
    c = StopCut(["<END>"])
    assert [c.feed("x<E"), c.feed("y")] == ["x", "<Ey"]
    assert cut_at_stop("abc", ()) == "abc"

def test_closing_the_stream_stops_generation(demo_chat):
    calls = []
    h = demo_chat.model.register_forward_hook(lambda *a: calls.append(1))
    try:
        g = demo_chat.reply([dict(role="user", content="write a long story about a boiler")], stream=True, max_new_tokens=300)
        next(g)
        g.close()
    finally: h.remove()
    assert len(calls) < 100 and not demo_chat.lock.locked()

# --- history ---

def test_trimming_keeps_system_and_newest_turns(tiny_chat):
    notes = []
    chat = Chat(tiny_chat.model, tiny_chat.tokenizer, system="SYSTEM-PROMPT-KEPT", context=200, notify=notes.append)
    history = [dict(role=r, content=f"turn{i} " + "word " * 15) for i in range(8) for r in ("user", "assistant")][:-1]
    text = chat.tokenizer.decode(chat.prompt(history, max_new_tokens=40))
    assert "SYSTEM-PROMPT-KEPT" in text and "turn7" in text and "turn0" not in text
    assert chat.trimmed > 0 and chat.trimmed % 2 == 0 and notes and f"oldest {chat.trimmed} messages" in notes[0]
    assert len(chat.prompt(history, max_new_tokens=40)) <= 160
    notes.clear()
    chat.prompt(history[-3:], max_new_tokens=40)
    assert chat.trimmed == 0 and not notes
    with pytest.raises(ChatftError, match="shorten it"): chat.prompt([dict(role="user", content="word " * 300)], 40)

# --- base vs tuned ---

def test_adapter_switch_changes_the_model_and_restores_it(tiny_run, tiny_chat):
    import torch
    from chatft.models import load_model
    trained = [[dict(role="user", content=next(m["content"] for m in c.messages if m["role"] == "user"))]
               for c in synthetic_conversations(16, seed=0)[:3]]
    before = [tiny_chat.reply(q, max_new_tokens=12) for q in trained]
    sides = [tiny_chat.compare(q, max_new_tokens=12) for q in trained]
    assert [s["tuned"] for s in sides] == before == [tiny_chat.reply(q, max_new_tokens=12) for q in trained]
    base = Chat(load_model(TINY_MODEL).eval(), tiny_chat.tokenizer)
    assert [s["base"] for s in sides] == [base.reply(q, max_new_tokens=12) for q in trained]
    ids = torch.tensor([tiny_chat.prompt(trained[0])])
    with torch.no_grad():
        on = tiny_chat.model(input_ids=ids).logits
        with tiny_chat.model.disable_adapter(): off = tiny_chat.model(input_ids=ids).logits
    assert not torch.allclose(on, off)
    g = tiny_chat.compare(trained[0], stream=True, max_new_tokens=12)
    next(g); g.close()                       # stopped while the adapter was off
    assert tiny_chat.reply(trained[0], max_new_tokens=12) == before[0]
    last = list(tiny_chat.compare(trained[0], stream=True, max_new_tokens=12))[-1]
    assert last == sides[0]

@pytest.mark.slow
def test_tuned_and_base_answers_differ_on_trained_prompts(demo_run):
    chat = load_chat(demo_run, device="cpu")
    trained = [[dict(role="user", content=next(m["content"] for m in c.messages if m["role"] == "user"))]
               for c in synthetic_conversations(16, seed=0)[:3]]
    sides = [chat.compare(q, max_new_tokens=24) for q in trained]
    assert all(s["base"] != s["tuned"] for s in sides)
    assert [s["tuned"] for s in sides] == [chat.reply(q, max_new_tokens=24) for q in trained]

# --- loading ---

def test_load_errors(tmp_path, tiny_run):
    with pytest.raises(ChatftError, match="no such run folder"): load_chat(tmp_path/"nope")
    with pytest.raises(ChatftError, match="no such run folder"): load_chat("nope")
    (tmp_path/"half").mkdir(); shutil.copy(tiny_run/"plan.json", tmp_path/"half")
    with pytest.raises(ChatftError, match="not a chatft run folder"): load_chat(tmp_path/"half")
    broken = shutil.copytree(tiny_run, tmp_path/"broken", ignore=shutil.ignore_patterns("checkpoints"))
    (broken/"adapter_model.safetensors").write_bytes(b"not weights")
    with pytest.raises(ChatftError, match="broken") as e: load_chat(broken)
    assert "\n" not in str(e.value)

def test_merged_run_has_no_base(tiny_run, tmp_path):
    chat = load_chat(tiny_run, merged=True, device="cpu")
    assert not chat.has_adapter
    with pytest.raises(ChatftError, match="no LoRA adapter"): chat.compare(QUESTION)
    with pytest.raises(ChatftError, match="no LoRA adapter"): chat.reply(QUESTION, stream=True, adapter=False)

def test_system_prompt_from_run_and_replaceable(tiny_run, tmp_path):
    run = shutil.copytree(tiny_run, tmp_path/"persona", ignore=shutil.ignore_patterns("checkpoints"))
    (run/"system.txt").write_text("You are Sam.")
    assert load_chat(run).system == "You are Sam."
    assert load_chat(run, system="Be brief.").system == "Be brief."
    assert load_chat(run, system="").system is None
    trained = (tiny_run/"system.txt").read_text() if (tiny_run/"system.txt").exists() else None
    assert load_chat(tiny_run).system == trained                 # what the run trained with: the newest custom instructions
    (run/"system.txt").unlink()
    assert load_chat(run).system is None                          # a run trained with none

# --- the notebook panel ---

def test_panel_widgets_and_printing(tiny_chat, capsys):
    w = ChatPanel(tiny_chat, compare=True, widgets=True, max_new_tokens=6)
    reply = w.send("hello")
    assert w.log.value.count("<div") == 3 and ">base</b>" in w.log.value and len(w.history) == 2
    assert reply == tiny_chat.reply("hello", max_new_tokens=6)
    w.reset(); assert w.log.value == "" and w.history == []
    p = ChatPanel(tiny_chat, widgets=False, max_new_tokens=6)
    p.send("hello")
    out = capsys.readouterr().out
    assert out.startswith("you: hello\n") and f"{tiny_chat.name}: " in out

def test_sampling_options_come_from_sampling():
    from chatft.core import command_parser, add_options
    p = add_options(command_parser("chat", ""), Sampling, *SAMPLING)
    a = p.parse_args(["--temperature", "0.7", "--seed", "3", "--max-new-tokens", "9"])
    assert (a.temperature, a.seed, a.max_new_tokens, a.top_k) == (0.7, 3, 9, 50)
    import inspect
    d = p.parse_args([])
    assert all(getattr(d, k) == inspect.signature(Chat.reply).parameters[k].default == getattr(Sampling(), k)
               for k in SAMPLING)        # Chat.reply takes the same settings, with the same defaults

# --- `chatft chat` ---

def chatft_chat()->list:
    "The command line of `chatft chat`: the console script once `chat` is registered in chatft.cli, else chat_cli."
    from chatft.cli import COMMANDS
    if "chat" in COMMANDS: return [str(Path(sys.executable).parent/"chatft"), "chat"]
    code = ("import sys\nfrom chatft.chat import chat_cli\nfrom chatft.export import ChatftError\n"
            "try: sys.exit(chat_cli(sys.argv[1:]))\n"
            "except ChatftError as e: print(f'chatft chat: error: {e}', file=sys.stderr); sys.exit(1)")
    return [sys.executable, "-c", code]

ENV = dict(os.environ, OMP_NUM_THREADS="1", ATEN_CPU_CAPABILITY="avx2", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")

def test_terminal_chat_through_a_pty(tiny_run):
    pexpect = pytest.importorskip("pexpect")
    cmd = chatft_chat()
    child = pexpect.spawn(cmd[0], cmd[1:] + [str(tiny_run), "--max-new-tokens", "6"], env=ENV, encoding="utf-8", timeout=120)
    try:
        child.expect("Chatting with run")
        child.expect("you> "); child.sendline("hello")
        child.expect("tuned> "); child.expect("you> ")
        child.sendline("/base"); child.expect(r"shown first: on"); child.expect("you> ")
        child.sendline("again"); child.expect(" base> "); child.expect("tuned> "); child.expect("you> ")
        child.sendline("/system Be brief."); child.expect(r"system prompt: Be brief\."); child.expect("you> ")
        child.sendline("/reset"); child.expect("conversation cleared"); child.expect("you> ")
        child.sendline("/quit"); child.expect(pexpect.EOF)
    finally: child.close()
    assert child.exitstatus == 0

def test_one_shot_message(demo_chat):
    "`chatft chat MODEL -m ...` prints the same greedy reply as `Chat.reply` (same machine) and exits 0."
    r = subprocess.run(chatft_chat() + [DEMO_MODEL, "-m", "name three fruits", "--max-new-tokens", "20"],
                       capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout == demo_chat.reply("name three fruits", max_new_tokens=20) + "\n"

def test_one_line_errors(tmp_path):
    for args, msg in [([str(tmp_path/"missing"), "-m", "hi"], "no such run folder"),
                      ([str(tmp_path), "-m", "hi"], "neither a run folder (plan.json and the adapter) nor a model folder")]:
        r = subprocess.run(chatft_chat() + args, capture_output=True, text=True, env=ENV, timeout=300)
        errors = [l for l in r.stderr.splitlines() if l.startswith("chatft chat: error:")]   # (bitsandbytes may warn first)
        assert r.returncode == 1 and len(errors) == 1 and msg in errors[0] and "Traceback" not in r.stderr, r.stderr
