"""The guide's chat models, Llama-2-chat and Mistral-7B-Instruct-v0.1, through chatft on their tiny stand-ins
(`chatft/tiny-random-llama2`, `chatft/tiny-random-mistral`: the real configurations scaled down, Mistral v0.1's real
SentencePiece tokenizer, each model's real chat template from `chatft/data/templates/`).

- Masks: chatft's mask (found by diffing renders) equals, token for token, the mask transformers computes from the same
  template with `{% generation %}` markers around what the template writes for a reply (its words, the end-of-turn
  `</s>` and Mistral's space after it), with one documented difference (MERGED).
- The templates' rules: Mistral v0.1 refuses a system message, both need user/assistant alternation from the user.
  chatft folds the system prompt into the first user message, joins consecutive messages of one role and drops a reply
  before the first user message, the same at training and inference, and `prepare`'s report says so.
- End to end on each stand-in: prepare -> train -> eval -> chat -> merge -> f16 GGUF (llama.cpp's converter reading
  `tokenizer.model`) answering as transformers in llama.cpp (up to near ties) -> `chatft serve` answering the
  openai client.
"""
import os, re
from pathlib import Path
import pytest
from conftest import chatft_server

os.environ.setdefault("OMP_NUM_THREADS", "1")
from chatft.core import ChatftError, Run
from chatft.models import load_tokenizer, model_path, STAND_INS
from chatft.template import (assistant_mask, render, render_example, inference_prompt, prepare_messages,
                             fit_template, template_rules, template_quirks, end_of_turn_token, check_contract,
                             _tokenize)

LLAMA2, MISTRAL = "chatft/tiny-random-llama2", "chatft/tiny-random-mistral"
TEMPLATES = Path(__file__).resolve().parents[1]/"chatft"/"data"/"templates"
# What each template writes for an assistant message, to be wrapped in {% generation %} markers for the reference.
REPLY = {LLAMA2: "{{ ' '  + content.strip() + ' ' + eos_token }}", MISTRAL: "{{ message['content'] + eos_token + ' ' }}"}
# Mistral v0.1 writes '</s> ' after a reply; before the next '[INST]' the space and '[' are one token '▁['. The
# reference marks it (one of its characters is the reply's); chatft leaves a token that runs into the next turn as
# context (see 03_template). This is the only place the two may differ.
MERGED = {MISTRAL: ("</s>", "▁[")}

CONVERSATIONS = [
    [dict(role="user", content="Hi there"), dict(role="assistant", content="Hello! How can I help?"),
     dict(role="user", content="Tell me a joke."), dict(role="assistant", content="Why did the chicken cross the road?\nTo get to the other side.")],
    [dict(role="user", content="Café ou thé ? ☕"), dict(role="assistant", content="Café, bien sûr.\n\n- noir\n- sans sucre"),
     dict(role="user", content="Pourquoi?"), dict(role="assistant", content=" Parce que c'est le matin. "),
     dict(role="user", content="ok"), dict(role="assistant", content="```python\nprint('bonjour')\n```")],
    [dict(role="user", content="one line"), dict(role="assistant", content="one reply")],
]
UNTIDY = [dict(role="assistant", content="Hi! Ask me anything."), dict(role="user", content="2+2?"),
          dict(role="user", content="And 3+3?"), dict(role="assistant", content="4, 6"), dict(role="user", content="ok"),
          dict(role="assistant", content="Good.")]

@pytest.fixture(scope="module", params=[MISTRAL, LLAMA2])
def model(request): return request.param

@pytest.fixture(scope="module")
def tok(model): return load_tokenizer(model)

def test_stand_ins_are_the_real_configs_and_templates():
    from transformers import AutoConfig
    for name, tpl in ((LLAMA2, "llama-2-chat.jinja"), (MISTRAL, "mistral-v0.1.jinja")):
        assert name in STAND_INS
        folder = model_path(name)
        cfg = AutoConfig.from_pretrained(folder)
        assert (cfg.vocab_size, cfg.bos_token_id, cfg.eos_token_id, cfg.hidden_act) == (32000, 1, 2, "silu")
        assert not cfg.tie_word_embeddings and cfg.num_key_value_heads < cfg.num_attention_heads
        assert (folder/"tokenizer.model").exists()
        assert load_tokenizer(name).chat_template == (TEMPLATES/tpl).read_text()
    assert AutoConfig.from_pretrained(model_path(LLAMA2)).max_position_embeddings == 4096
    mistral = AutoConfig.from_pretrained(model_path(MISTRAL))
    assert (mistral.model_type, mistral.max_position_embeddings, mistral.sliding_window) == ("mistral", 32768, 4096)

def _reference_mask(model, tok, conv):
    "transformers' mask from the template with generation markers around what it writes for a reply."
    tpl = (TEMPLATES/("llama-2-chat.jinja" if model == LLAMA2 else "mistral-v0.1.jinja")).read_text()
    assert tpl.count(REPLY[model]) == 1
    marked = tpl.replace(REPLY[model], "{% generation %}" + REPLY[model] + "{% endgeneration %}")
    out = tok.apply_chat_template(conv, chat_template=marked, tokenize=True, return_dict=True,
                                  return_assistant_tokens_mask=True)
    return list(out["input_ids"]), list(out["assistant_masks"])

def test_masks_equal_the_marker_reference(model, tok):
    "Token for token, on every conversation; the end-of-turn </s> of every reply is trained."
    eos, merged = tok.convert_tokens_to_ids("</s>"), 0
    for conv in CONVERSATIONS:
        ids, mask = assistant_mask(conv, tok)
        ref_ids, ref = _reference_mask(model, tok, conv)
        assert ids == ref_ids
        pieces = tok.convert_ids_to_tokens(ids)
        for t in range(1, len(ids)):
            if model in MERGED and (pieces[t-1], pieces[t]) == MERGED[model] and ref[t] and not mask[t]:
                ref[t] = 0; merged += 1
        assert mask == ref, [(p, r, m) for p, r, m in zip(pieces, ref, mask) if r != m]
        assert all(mask[t] for t, i in enumerate(ids) if i == eos)           # every reply's </s> is trained
        assert sum(i == eos for i in ids) == sum(m["role"] == "assistant" for m in conv)
    assert merged == (sum(sum(m["role"] == "assistant" for m in c[:-1]) for c in CONVERSATIONS) if model in MERGED else 0)
    assert end_of_turn_token(tok) == "</s>"

def test_generation_prompt_is_the_training_prefix(model, tok):
    for conv in CONVERSATIONS:
        ex = render_example(conv, tok, system="Be brief.")
        for k in range(1, len(conv), 2):
            p = inference_prompt(conv[:k], tok, system="Be brief.")
            assert ex["input_ids"][:len(p)] == p
    check_contract(tok, [render_example(c, tok) for c in CONVERSATIONS], system="Be brief.")

def test_template_rules(tok, model):
    rules = template_rules(tok)
    assert rules == dict(system=model == LLAMA2, repeat=False, reply_first=False)
    q = str(template_quirks(tok))
    assert "alternating" in q and (("does not accept a system message" in q) == (model == MISTRAL))

def test_system_fold_same_in_training_and_inference(tok, model):
    "Mistral v0.1: the system prompt starts the first user message; Llama-2: the template's own <<SYS>> block."
    conv = CONVERSATIONS[0]
    full = render(fit_template(prepare_messages(conv, "Be brief."), tok), tok)
    head = "<s>[INST] Be brief.\n\nHi there [/INST]" if model == MISTRAL else "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi there [/INST]"
    assert full.startswith(head)
    with pytest.raises(ChatftError, match="refused"):
        if model == MISTRAL: render(prepare_messages(conv, "Be brief."), tok, fit=False)
        else: render(conv[1:], tok, fit=False)
    assert render(prepare_messages(conv, "Be brief."), tok) == full      # `render` fits what the template refuses
    ex = render_example(conv, tok, system="Be brief.")
    prompt = inference_prompt(conv[:1], tok, system="Be brief.")
    assert prompt == _tokenize(head, tok)[0] and ex["input_ids"][:len(prompt)] == prompt
    assert "Be brief." not in tok.decode([l for l in ex["labels"] if l != -100])

def test_untidy_conversations_fit(tok):
    "A reply first and two user messages in a row: fitted, the same for training and inference, never a traceback."
    ex = render_example(UNTIDY, tok, system="Be brief.")
    trained = tok.decode([l for l in ex["labels"] if l != -100])
    assert "4, 6" in trained and "Good." in trained and "Ask me anything" not in tok.decode(ex["input_ids"])
    p = inference_prompt(UNTIDY[:5], tok, system="Be brief.")
    assert ex["input_ids"][:len(p)] == p and "2+2?\n\nAnd 3+3?" in tok.decode(p)
    me = render_example(UNTIDY, tok, train_on="me")      # "me": your two messages joined into one reply, trained
    me_trained = tok.decode([l for l in me["labels"] if l != -100])
    assert re.search(r"2\+2\?\n\nAnd 3\+3\? ?</s>", me_trained) and re.search("ok ?</s>", me_trained)
    assert "Ask me" not in me_trained
    with pytest.raises(ChatftError, match="Nothing to train"):
        render_example(UNTIDY[:1], tok)

def test_prepare_reports_the_fold():
    from chatft.dataset import prepare
    from chatft.synth import synthetic_conversations
    tok = load_tokenizer(MISTRAL)
    convs = synthetic_conversations(6, seed=0)
    dsd, rep = prepare(convs, tok, max_length=256, system="You are terse.", test_size=0.2)
    note = rep.notes["template"]
    assert "does not accept a system message" in note and "first user message" in note
    head = _tokenize("<s>[INST] You are terse.\n\n", tok)[0]
    assert all(list(ids[:len(head)]) == head for ids in dsd["train"]["input_ids"])

def test_guide_presets():
    "The guide's models beside today's: sizes, context, what fits where; the plan's context never exceeds theirs."
    from chatft.models import preset, PRESETS, DEMO_MODEL
    from chatft.train import model_shape
    want = {"gpt2": (0.124, 1024, "cpu"), "gpt2-medium": (0.355, 1024, "cpu"),
            "microsoft/DialoGPT-medium": (0.355, 1024, "cpu"), "microsoft/DialoGPT-large": (0.774, 1024, "t4"),
            "meta-llama/Llama-2-7b-chat-hf": (6.74, 4096, "t4"), "meta-llama/Llama-2-13b-chat-hf": (13.0, 4096, "24gb"),
            "mistralai/Mistral-7B-Instruct-v0.1": (7.24, 32768, "t4")}
    for name, (b, positions, hw) in want.items():
        p = preset(name)
        assert (p.params_b, p.positions, p.hardware) == (b, positions, hw), name
        assert model_shape(name).max_positions == positions
    assert PRESETS[0].name == DEMO_MODEL and preset("meta-llama/Llama-2-7b-chat-hf").gated
    assert "system" in preset("mistralai/Mistral-7B-Instruct-v0.1").notes

# --- end to end on each stand-in ---

TOKENS = 12
PROMPTS = [[dict(role="user", content=q)] for q in ("What is the capital of France?", "name three fruits", "Write one sentence about the sea.")]
MULTI = [dict(role="user", content="hi"), dict(role="assistant", content="Hello!"), dict(role="user", content="name three fruits")]
# llama.cpp writes a space before the text after any special token of a SentencePiece vocabulary: Mistral v0.1's
# '</s> [INST]' (the second turn) becomes '</s>', '▁', '▁[' there, and '</s>', '▁[' in transformers (and in
# mistral-common, Mistral's reference). Single-turn prompts agree; later turns reach llama.cpp one token different.
LLAMA_CPP_SPACE = {MISTRAL}
# A random model may emit a lone byte piece (part of a UTF-8 character), which transformers decodes as '\ufffd' and
# llama.cpp leaves out: the prompts here were chosen to draw no such piece from the stand-ins, and the test checks
# that. (`gguf_agreement` allows for the other SentencePiece difference: llama.cpp keeps the space of a reply's
# first piece, '▁Korean' -> ' Korean', which transformers' decode drops.)

@pytest.fixture(scope="module")
def run(model, tmp_path_factory):
    """`chatft.chat.practice_run`'s few steps, trained with a system prompt, which Mistral v0.1's template refuses:
    training, chat, serve and the GGUF's checks all fold it into the first user message (`fit_template`)."""
    from chatft.dataset import prepare
    from chatft.synth import synthetic_conversations
    from chatft.train import plan_training, train
    folder, tok = tmp_path_factory.mktemp("guide")/"run", load_tokenizer(model)
    dsd, report = prepare(synthetic_conversations(12, seed=0), tok, max_length=256, test_size=0.1, system="Be brief.")
    plan = plan_training(model, dsd, max_steps=2, lr=1e-3, lr_scheduler="constant", warmup_ratio=0, lora_dropout=0.0,
                         eval_steps=10**6, save_steps=10**6, logging_steps=1, max_length=256)
    train(plan, dsd, folder, tokenizer=tok, report=report, overwrite=True, live=False, progress_bar=False,
          final_eval=False)
    return folder

def test_end_to_end(model, run, tmp_path):
    from chatft.deploy import (merge, rounded_chat, convert_to_gguf, find_converter, load_gguf,
                               gguf_agreement, converter_dir, same_tokens)
    from chatft.chat import load_chat
    from chatft.evaluate import evaluate_run
    evaluate_run(run, n=2, max_new_tokens=8, general=False, probe=False)
    assert (run/Run.EVAL).exists(), sorted(p.name for p in run.iterdir())     # evaluated: base vs tuned, saved
    chat = load_chat(run, device="cpu")
    assert chat.end_of_turn == "</s>" and isinstance(chat.reply("name three fruits", max_new_tokens=8), str)
    merged = merge(run, tmp_path/"merged", device="cpu")
    if not (converter_dir()/"convert_hf_to_gguf.py").exists(): pytest.skip("llama.cpp's converter is not cached")
    pytest.importorskip("llama_cpp")
    assert (run/"tokenizer.model").exists(), "llama.cpp's converter needs the SentencePiece model"
    ids = lambda t: t("<s>[INST] hi", add_special_tokens=False)["input_ids"]
    assert ids(load_tokenizer(run)) == ids(load_tokenizer(model))   # the run's tokenizer is the base's (`save_tokenizer`)
    out = convert_to_gguf(merged, tmp_path/"model-f16.gguf", "f16", find_converter())
    llm, reference = load_gguf(out), rounded_chat(merged)
    texts = ["naïve café 東京 🙂", "[INST] hi [/INST]", "tabs\tand\nnew lines", "<s>[INST] hi [/INST]"]
    assert same_tokens(llm, reference.tokenizer, texts).same.all()
    # Runs of spaces and the text after a special token: llama.cpp cuts them as `sentencepiece` does, transformers
    # otherwise; `same_tokens` says "spaces". Text llama.cpp reads as characters where transformers has a special
    # token (a GGUF without it) is "tokens".
    spaced = same_tokens(llm, reference.tokenizer, ["a  b", "x:\n    return  1", "</s> [INST] hi"])
    assert list(spaced.differ) == ["spaces"] * 3, spaced.to_string()
    from chatft.deploy import _spaces_only
    tk = reference.tokenizer
    as_text = tk("</s> hi", add_special_tokens=False, split_special_tokens=True)["input_ids"]
    assert not _spaces_only(tk, tk("</s> hi", add_special_tokens=False)["input_ids"], as_text)
    prompts = PROMPTS + ([] if model in LLAMA_CPP_SPACE else [MULTI])
    ours = [reference.reply(p, max_new_tokens=TOKENS) for p in prompts]
    assert not any("\ufffd" in r for r in ours), ours       # no lone byte piece (see above)
    check = gguf_agreement(llm, reference, prompts, TOKENS)       # messages fitted to the template, as in training
    assert check.ok.all(), check.to_string()
    multi = gguf_agreement(llm, reference, [MULTI], TOKENS)
    assert multi.same_prompt.all() == (model not in LLAMA_CPP_SPACE), multi.to_string()
    _served(run, chat)

def _served(run, chat):
    "`chatft serve` on the run answers the openai client as `chat` does (greedy, up to near ties)."
    openai = pytest.importorskip("openai")
    from chatft.deploy import reply_agreement
    proc, url = chatft_server(run)
    try:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=120)
        msgs = [dict(role="system", content="Be brief."), dict(role="user", content="name three fruits")]
        r = client.chat.completions.create(model="run", messages=msgs, max_tokens=TOKENS, temperature=0)
        table = reply_agreement(chat, [msgs], [r.choices[0].message.content], TOKENS)
        assert table.ok.all(), table.to_string()
    finally:
        proc.kill(); proc.wait()

def test_batched_engine_equals_one_at_a_time(model, run):
    """The server's engine generates concurrent requests together (rows stacked with left padding): for Mistral's
    sliding-window layers it once failed ('size of tensor a (51) must match the size of tensor b (45)')."""
    import concurrent.futures as cf
    from chatft.chat import load_chat
    from chatft.serve import Engine
    chat = load_chat(run, device="cpu", merged=True)
    engine = Engine(chat, max_batch=4)
    engine.start()
    try:
        with cf.ThreadPoolExecutor(4) as pool:
            together = list(pool.map(lambda p: engine.reply(p, max_tokens=TOKENS, temperature=0), PROMPTS + [MULTI]))
    finally: engine.stop()
    assert engine.stats["steps"] < engine.stats["rows"], engine         # some steps generated several rows at once
    from chatft.deploy import reply_agreement
    table = reply_agreement(chat, PROMPTS + [MULTI], together, TOKENS)
    assert table.ok.all(), table.to_string()
