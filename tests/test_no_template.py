"""Models without a chat template (GPT-2, DialoGPT, base models): chatft's named templates, the family rule that
picks one, `--template NAME|FILE`, the model's context limit, and the template travelling with the run.

Masks are held to tests/test_template.py's standard: for each named template a training variant with
`{% generation %}` markers is written here by hand; with its markers stripped it must render exactly the shipped
template's text, and chatft's mask (which never reads markers) must equal transformers' marker-based
`assistant_masks`, token for token. The end-to-end test runs the GPT-2 stand-in (GPT-2's real config scaled down,
GPT-2's real tokenizer, no chat template) through prepare -> train -> eval -> chat -> merge -> GGUF f16 in llama.cpp
-> `chatft serve` answering the openai client."""
import os, re, sys, json, subprocess
from pathlib import Path
import pytest
from conftest import chatft_server

os.environ.setdefault("OMP_NUM_THREADS", "1")
from chatft.core import ChatftError, write_jsonl
from chatft.synth import synthetic_conversations
from chatft.models import (DEMO_MODEL, TINY_GPT2, TINY_DIALOGPT, load_tokenizer, template_names, template_text,
                           family_template)
from chatft.template import (assistant_mask, render, render_example, check_contract, prepare_messages,
                             trained_indices, inference_prompt, _tokenize, template_quirks)

CHATFT = str(Path(sys.executable).parent/"chatft")
MARKERS = re.compile(r"\{%-?\s*(?:end)?generation\s*-?%\}")

# Training variants written from each template's definition: what a reply is, marked with {% generation %}.
TRAINING = {
    "plain": ("{%- for message in messages -%}{%- if message['role'] == 'system' -%}{{ message['content'] + '\\n\\n' }}"
              "{%- elif message['role'] == 'user' -%}{{ 'User: ' + message['content'] + '\\n' }}"
              "{%- else -%}{{ 'Assistant: ' }}{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}"
              "{%- endif -%}{%- endfor -%}{%- if add_generation_prompt -%}{{ 'Assistant:' }}{%- endif -%}"),
    "dialogpt": ("{%- for message in messages -%}{%- if message['role'] == 'assistant' -%}"
                 "{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}"
                 "{%- elif message['role'] == 'user' -%}{{ message['content'] + eos_token }}{%- endif -%}{%- endfor -%}"),
    "chatml": ("{%- set end = END -%}{%- for message in messages -%}"
               "{{ '<|im_start|>' + message['role'] + '\\n' }}{%- if message['role'] == 'assistant' -%}"
               "{% generation %}{{ message['content'] + end + '\\n' }}{% endgeneration %}"
               "{%- else -%}{{ message['content'] + end + '\\n' }}{%- endif -%}{%- endfor -%}"
               "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"),
}

CONVERSATIONS = [
    [dict(role="user", content="Hi there"), dict(role="assistant", content="Hello! How can I help?"),
     dict(role="user", content="Name a fruit"), dict(role="assistant", content="An apple.")],
    [dict(role="user", content="naïve café 東京 🙂\n  two spaces"), dict(role="assistant", content="  leading\n\nand\ttabs 100%")],
    [dict(role="user", content="def f(x):\n    return x"), dict(role="assistant", content="It returns x."),
     dict(role="user", content="ok"), dict(role="assistant", content="Yes:\n- one\n- two"),
     dict(role="user", content="thanks"), dict(role="assistant", content="Any time!")],
]

@pytest.fixture(scope="module")
def gpt2_tok(): return load_tokenizer(TINY_GPT2)

@pytest.fixture(scope="module")
def demo_tok(): return load_tokenizer(DEMO_MODEL)

def _training(name, tok):
    end = "'<|im_end|>'" if "<|im_end|>" in tok.get_vocab() else "eos_token"
    return TRAINING[name].replace("END", end)

def _marker_mask(msgs, tok, tpl):
    out = tok.apply_chat_template(msgs, chat_template=tpl, tokenize=True, return_dict=True,
                                  return_assistant_tokens_mask=True)
    return out["input_ids"], out["assistant_masks"]

@pytest.mark.parametrize("name,model", [("plain", "gpt2"), ("dialogpt", "gpt2"), ("chatml", "gpt2"), ("chatml", "demo"),
                                        ("plain", "demo")])
@pytest.mark.parametrize("system", [None, "You answer briefly."])
def test_masks_equal_the_marker_reference(name, model, system, gpt2_tok, demo_tok):
    "chatft's mask on the shipped template == transformers' mask from the hand-marked variant, token for token."
    tok = load_tokenizer(TINY_GPT2 if model == "gpt2" else DEMO_MODEL, name)
    ref = _training(name, tok)
    for conv in CONVERSATIONS:
        msgs = prepare_messages(conv, system)
        if name == "dialogpt": msgs = [m for m in msgs if m["role"] != "system"]   # the template leaves it out
        assert render(msgs, tok) == render(msgs, tok, chat_template=MARKERS.sub("", ref))
        ids, mask = assistant_mask(msgs, tok)
        ref_ids, ref_mask = _marker_mask(msgs, tok, ref)
        assert ids == ref_ids and mask == ref_mask, (name, model, msgs)

@pytest.mark.parametrize("name", ["plain", "dialogpt", "chatml"])
def test_contract_and_prompt_prefix_in_tokens(name, gpt2_tok):
    """`check_contract` passes on each template, and the generation prompt's tokens are a prefix of the rendered
    reply's (what the model is given at inference is what training continued from)."""
    tok = load_tokenizer(TINY_GPT2, name)
    for conv in CONVERSATIONS:
        for train_on in ("assistant", "me", "last"):
            msgs = prepare_messages(conv, "Be brief.", train_on)
            if not trained_indices(msgs, train_on): continue
            facts = check_contract(tok, render_example(conv, tok, "Be brief.", train_on), system="Be brief.")
            assert facts["end_of_turn"] == "<|endoftext|>"
        full = _tokenize(render(conv, tok), tok)[0]
        for i, m in enumerate(conv):
            if m["role"] == "assistant":
                prompt = inference_prompt(conv[:i], tok)
                assert full[:len(prompt)] == prompt, (name, i)

def test_chatml_closes_with_im_end_only_when_the_tokenizer_has_it(gpt2_tok, demo_tok):
    assert "<|im_end|>" not in render(CONVERSATIONS[0], load_tokenizer(TINY_GPT2, "chatml"))
    assert "<|endoftext|>\n<|im_start|>" in render(CONVERSATIONS[0], load_tokenizer(TINY_GPT2, "chatml"))
    assert "<|im_end|>\n<|im_start|>" in render(CONVERSATIONS[0], load_tokenizer(DEMO_MODEL, "chatml"))

def test_dialogpt_leaves_a_system_prompt_out_and_says_so():
    tok = load_tokenizer(TINY_DIALOGPT)
    text = render([dict(role="system", content="PERSONA"), *CONVERSATIONS[0][:2]], tok)
    assert text == "Hi there<|endoftext|>Hello! How can I help?<|endoftext|>"
    assert not template_quirks(tok).system_supported

def test_family_pick_and_note(gpt2_tok, demo_tok):
    assert gpt2_tok.chat_template == template_text("plain", gpt2_tok)
    assert "no chat template" in gpt2_tok.template_note and "'plain'" in gpt2_tok.template_note
    assert family_template(TINY_DIALOGPT, gpt2_tok)[0] == "dialogpt"
    assert family_template("microsoft/DialoGPT-medium", gpt2_tok)[0] == "dialogpt"
    assert family_template("gpt2", gpt2_tok)[0] == "plain"
    assert family_template("Qwen/Qwen2.5-0.5B", demo_tok)[0] == "chatml"   # has <|im_start|>/<|im_end|>
    assert demo_tok.template_note is None                                 # its own template, untouched
    assert load_tokenizer(DEMO_MODEL, "plain").template_note.startswith("chat template 'plain' (--template)")
    assert sorted(template_names()) == ["chatml", "dialogpt", "llama-2-chat", "mistral-v0.1", "plain"]
    assert family_template("meta-llama/Llama-2-7b-hf", gpt2_tok)[0] == "llama-2-chat"     # a base Llama-2
    assert family_template("mistralai/Mistral-7B-v0.1", gpt2_tok)[0] == "mistral-v0.1"

def test_render_without_a_template_points_at_the_option(gpt2_tok):
    from transformers import AutoTokenizer
    bare = AutoTokenizer.from_pretrained(Path.home()/".cache"/"chatft"/"tokenizers"/"gpt2")
    with pytest.raises(ChatftError, match="--template NAME\\|FILE"): render(CONVERSATIONS[0], bare)

def test_template_file_and_unknown_name(tmp_path):
    "`--template FILE` renders with the file and says so; an unknown name is a one-line error naming the choices."
    src = write_jsonl(synthetic_conversations(6, seed=0), tmp_path/"in.jsonl")
    tpl = tmp_path/"mine.jinja"
    tpl.write_text(MARKERS.sub("", TRAINING["plain"]).replace("User: ", "Q: ").replace("'Assistant: '", "'A: '")
                   .replace("'Assistant:'", "'A:'"))
    from chatft.dataset import prepare_cli
    assert prepare_cli([str(src), "--model", TINY_GPT2, "--template", str(tpl), "-o", str(tmp_path/"d"),
                        "--max-length", "256"]) == 0
    notes = json.loads((tmp_path/"d"/"report.json").read_text())["notes"]
    assert f"chat template {str(tpl)!r} (--template)" in notes["template source"]
    assert (tmp_path/"d"/"chat_template.jinja").read_text() == tpl.read_text()
    first = json.loads((tmp_path/"d"/"train.jsonl").read_text().splitlines()[0])["input_ids"]
    text = load_tokenizer(TINY_GPT2).decode(first)
    assert "Q: " in text and "\nA: " in text and "Assistant" not in text, text
    done = subprocess.run([CHATFT, "prepare", str(src), "--model", TINY_GPT2, "--template", "zephyr", "-o",
                           str(tmp_path/"e")], capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    lines = [l for l in done.stderr.splitlines() if l.startswith("chatft ")]
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert "'zephyr'" in lines[0] and "chatml, dialogpt, llama-2-chat, mistral-v0.1, plain" in lines[0]

def test_context_limit_in_the_plan_and_the_windows(gpt2_tok):
    "GPT-2 reads 1024 positions: the plan never asks for more, and prepare's windows fit."
    from chatft.train import plan_training, model_shape
    from chatft.dataset import prepare
    assert gpt2_tok.model_max_length == 1024 and model_shape(TINY_GPT2).max_positions == 1024
    assert plan_training(TINY_GPT2, [3000]*8, hardware="t4", measure=False).max_length == 1024
    with pytest.raises(ChatftError, match="1024 positions"): plan_training(TINY_GPT2, [300]*8, measure=False, max_length=2048)
    long = synthetic_conversations(4, seed=0)
    long[0].messages[1]["content"] = " ".join(["word"]*1500)
    dsd, rep = prepare(long, gpt2_tok, max_length=4096, test_size=0.0, check=False)
    assert max(map(len, dsd["train"]["input_ids"])) <= 1024 and "1024, not 4096" in rep.notes["max_length"]

# --- one run of the GPT-2 stand-in, end to end ---

@pytest.fixture(scope="module")
def gpt2_run(tmp_path_factory):
    "`chatft prepare` (the console script: the note must reach its output) then `train_cli` a few steps."
    d = tmp_path_factory.mktemp("gpt2")
    src = write_jsonl(synthetic_conversations(12, seed=0), d/"in.jsonl")
    done = subprocess.run([CHATFT, "prepare", str(src), "--model", TINY_GPT2, "-o", str(d/"data"), "--max-length", "256"],
                          capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    from chatft.train import train_cli
    assert train_cli([str(d/"data"), "--model", TINY_GPT2, "-o", str(d/"run"), "--max-steps", "3", "--lr", "1e-3"]) == 0
    return d, done.stdout

def test_gpt2_end_to_end(gpt2_run, tmp_path):
    from chatft.evaluate import evaluate_run
    from chatft.chat import load_chat
    from chatft.deploy import merge, gguf, load_gguf, rounded_chat, heldout_prompts, gguf_agreement
    d, out = gpt2_run
    assert "has no chat template: chatft's 'plain' template" in out
    data_tpl = (d/"data"/"chat_template.jinja").read_text()
    assert data_tpl == template_text("plain", load_tokenizer(TINY_GPT2))
    assert (d/"run"/"chat_template.jinja").read_text() == data_tpl                     # the run carries it
    from chatft.train import train_cli
    with pytest.raises(ChatftError, match="--template chatml: the prepared data was rendered with another"):
        train_cli([str(d/"data"), "--model", TINY_GPT2, "--template", "chatml", "-o", str(tmp_path/"other")])
    evaluate_run(d/"run", n=2, max_new_tokens=4, probe=0)
    assert (d/"run"/"eval.json").exists()
    chat = load_chat(d/"run", device="cpu")
    prompt = chat.prompt("hello there", 8)
    assert chat.tokenizer.decode(prompt).endswith("User: hello there\nAssistant:")
    assert chat.end_of_turn == "<|endoftext|>"
    merged = merge(d/"run", tmp_path/"merged", device="cpu")
    assert (merged/"chat_template.jinja").read_text() == data_tpl
    from test_deploy import need_converter, need_llama_cpp
    need_converter(); need_llama_cpp()
    f16 = gguf(d/"run", tmp_path/"m-f16.gguf", "f16")
    mf = f16.with_suffix(".Modelfile").read_text()
    assert "User: {{ .Content }}" in mf and 'PARAMETER stop "<|endoftext|>"' in mf
    llm = load_gguf(f16)
    assert llm.metadata["tokenizer.chat_template"] == data_tpl
    prompts = heldout_prompts(d/"run", 3)
    check = gguf_agreement(llm, rounded_chat(merged), prompts, 16)
    assert check.same_prompt.all() and check.ok.all(), check.to_string()

def test_gpt2_serve_answers_the_openai_client(gpt2_run):
    openai = pytest.importorskip("openai")
    from chatft.chat import load_chat
    from test_serve import agree
    d, _ = gpt2_run
    proc, url = chatft_server(d/"run")
    try:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=120)
        r = client.chat.completions.create(model="run", messages=[dict(role="user", content="name three fruits")],
                                           max_tokens=8, temperature=0)
        chat = load_chat(d/"run", device="cpu", merged=True)
        agree(chat, ["name three fruits"], [r.choices[0].message.content], 8)
        assert r.usage.prompt_tokens == len(chat.prompt("name three fruits", 8))
    finally:
        proc.kill(); proc.wait()

# --- a template file that needs new special tokens ---

NEW_TOKENS_TEMPLATE = ("{%- for m in messages -%}{%- if m['role'] == 'user' -%}{{ '<|user|>' + m['content'] + '<|end|>' }}"
                       "{%- elif m['role'] == 'assistant' -%}{{ '<|assistant|>' + m['content'] + '<|end|>' }}"
                       "{%- else -%}{{ '<|system|>' + m['content'] + '<|end|>' }}{%- endif -%}{%- endfor -%}"
                       "{%- if add_generation_prompt -%}{{ '<|assistant|>' }}{%- endif -%}")

def test_new_tokens_get_trained_rows_carried_through_merge_and_gguf(tmp_path):
    """A template file whose special tokens GPT-2 lacks: they are added, the embedding grows by their rows, training
    changes those rows only (GPT-2's lm_head stays tied to `wte`), and merge and the GGUF carry them."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM
    from chatft.dataset import prepare_cli
    from chatft.train import train_cli
    from chatft.models import load_model
    from chatft.deploy import merge, gguf, load_gguf, rounded_chat, heldout_prompts, gguf_agreement, same_tokens
    tpl = tmp_path/"tokens.jinja"; tpl.write_text(NEW_TOKENS_TEMPLATE)
    src = write_jsonl(synthetic_conversations(8, seed=0), tmp_path/"in.jsonl")
    assert prepare_cli([str(src), "--model", TINY_GPT2, "--template", str(tpl), "-o", str(tmp_path/"d"),
                        "--max-length", "256"]) == 0
    notes = json.loads((tmp_path/"d"/"report.json").read_text())["notes"]
    new = {"<|assistant|>": 50257, "<|end|>": 50258, "<|system|>": 50259, "<|user|>": 50260}
    assert notes["new tokens"] == new and notes["end-of-turn token"] == "<|end|>"
    # train without --template: the data's template and tokens are used
    assert train_cli([str(tmp_path/"d"), "--model", TINY_GPT2, "-o", str(tmp_path/"run"), "--max-steps", "3",
                      "--lr", "1e-2"]) == 0
    sd = load_file(tmp_path/"run"/"adapter_model.safetensors")
    delta = sd["base_model.model.transformer.wte.token_adapter.trainable_tokens_delta"]
    init = sd["base_model.model.transformer.wte.token_adapter.base_layer.weight"][50257:]
    assert delta.shape == (4, 64) and not torch.equal(delta, init)                      # the new rows were trained
    # DPO on top: TRL's DPO scores replies with the output layer's weights, past the adapter's trained token rows
    from chatft.prefer import train_dpo
    with pytest.raises(ChatftError, match="its template added tokens .4, trained in the adapter"):
        train_dpo(tmp_path/"run", None, tmp_path/"dpo")
    assert not (tmp_path/"dpo").exists()                                                # nothing half-written
    merged = merge(tmp_path/"run", tmp_path/"merged", device="cpu")
    m, base = AutoModelForCausalLM.from_pretrained(merged), load_model(TINY_GPT2)
    W = m.get_input_embeddings().weight
    assert W.shape == (50261, 64) and torch.equal(W[:50257], base.get_input_embeddings().weight)  # old rows untouched
    assert torch.equal(W[50257:], delta) and torch.equal(m.lm_head.weight, W)                   # tied lm_head follows
    from test_deploy import need_converter, need_llama_cpp
    need_converter(); need_llama_cpp()
    llm = load_gguf(gguf(tmp_path/"run", tmp_path/"m.gguf", "f16"))
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(merged)
    table = same_tokens(llm, tok, ["<|user|>hi<|end|><|assistant|>", "plain <|end|> text"])
    assert table.same.all(), table
    check = gguf_agreement(llm, rounded_chat(merged), heldout_prompts(tmp_path/"run", 2), 12)
    assert check.same_prompt.all() and check.ok.all(), check.to_string()
