"""What the model saw in training is what it sees in use: the prompt chat, serve and a merged folder build for a message
is the training render of the same turn up to the reply, for runs trained with and without custom instructions."""
from pathlib import Path
import pytest
from chatft.core import Conversation
from chatft.models import TINY_MODEL, load_tokenizer
from chatft.dataset import prepare
from chatft.template import render_example
from chatft.train import plan_training, train
from chatft.chat import load_chat
from chatft.serve import Engine, parse_request
from chatft.deploy import merge, merged_chat

OLD, NEW = "be brief.", "be concise. i live in london and i prefer metric units."

def convs(with_instructions:bool):
    "Six conversations; with instructions, the older ones carry OLD custom instructions, the newer NEW, one none."
    out = []
    for i in range(6):
        system = (OLD if i < 2 else None if i == 2 else NEW) if with_instructions else None
        out.append(Conversation(id=f"c{i}", create_time=1.7e9 + i, system=system, messages=[
            dict(role="user", content=f"how long do I boil {i} eggs"), dict(role="assistant", content=f"About {6+i} minutes for {i} eggs.")]))
    return out

def trained_prefix(conv, tok, system):
    "The training render of `conv` (with `system`, as prepare renders it) up to its first trained token."
    ex = render_example(conv.messages, tok, system=system)
    return ex["input_ids"][:next(i for i, l in enumerate(ex["labels"]) if l != -100)]

@pytest.fixture(scope="module")
def tok(): return load_tokenizer(TINY_MODEL)

@pytest.mark.parametrize("with_instructions", [True, False])
def test_served_prompt_is_the_trained_render(tok, tmp_path, with_instructions):
    cs = convs(with_instructions)
    dsd, rep = prepare(cs, tok, max_length=128, test_size=0.2)
    plan = plan_training(TINY_MODEL, dsd, hardware="cpu", max_length=128, max_steps=1, precision="fp32")
    run = tmp_path/"run"
    train(plan, dsd, run, tokenizer=tok, report=rep, live=False, progress_bar=False)
    assert (run/"system.txt").exists() == with_instructions
    if with_instructions: assert (run/"system.txt").read_text() == NEW          # the newest custom instructions
    newest = cs[-1]                                                             # trained with NEW (or with none)
    want = trained_prefix(newest, tok, newest.system)
    question = newest.messages[:1]
    chat = load_chat(run, device="cpu")
    assert chat.prompt(question) == want, "chat"
    served = Engine(chat).job(parse_request(dict(messages=question, max_tokens=8))).prompt
    assert served == want, "serve"
    folder = merge(run, tmp_path/"merged", device="cpu")
    assert merged_chat(folder, "cpu").prompt(question) == want, "merged folder"
    if with_instructions:                                                       # an older conversation's instructions differ
        assert chat.prompt(cs[0].messages[:1]) != trained_prefix(cs[0], tok, OLD)
        assert load_chat(run, system=OLD, device="cpu").prompt(cs[0].messages[:1]) == trained_prefix(cs[0], tok, OLD)
