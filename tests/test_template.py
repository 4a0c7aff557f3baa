"""chatft's loss masks against TRL's marker-based training templates, token for token.

TRL ships, for each model family it supports, the model's chat template (`<family>.jinja`) and a
training variant with `{% generation %}` markers (`<family>_training.jinja`), from which
`tokenizer.apply_chat_template(..., return_assistant_tokens_mask=True)` gives the tokens to train.
chatft never reads markers: it renders prefixes of the conversation and diffs them. For every text
family we strip the markers from TRL's training template (so both render the very same text), compute
chatft's mask from that plain template, and compare with the marker-based `assistant_masks`.

Tokenizer: there is no Hub here, so each family's template runs on the demo tokenizer (SmolLM2's) with
that family's special tokens (`<|eot_id|>`, `<start_of_turn>`, `<｜Assistant｜>`, `<think>`, ...) added as
single special tokens, as they are in the family's real tokenizer. Both masks are computed from the
same rendered text and the same tokenization, and depend only on where messages and special tokens
fall in it; a different vocabulary changes how ordinary words split, never which characters are
inside a reply. So the comparison tests exactly what differs between the two methods: which part of
the text each considers trained.

Skipped, with reasons: vision-language families (idefics3, llava_next, qwen2_5_vl, qwen3_vl, smolvlm,
lfm2_2_5_vl): their templates expect multimodal content lists (`[{"type": "text", ...}]`) and chatft
trains on text chat exports. `lfm2_2_5` ships with markers in its original template (no `_training`
variant): it is included, compared with itself minus markers.

Where TRL's markers differ from chatft's definition (train a reply from its first word: its words, its
end-of-turn token and the rest of the turn's closing text; never the system prompt, a header, the
generation prompt or scaffolding written before the words) the difference is documented in
BEFORE_WORDS_IN_GENERATION / LAST_ONLY_END and checked to be exactly that.

A second set of tests does not compare with TRL: it reads the text under chatft's trained tokens and
requires it to be the trained messages' words plus closing special tokens, in every mode ("assistant",
"me", "last"), with and without a system prompt, on every family (the bug: in "me" mode without a
system prompt, SmolLM2's injected system prompt and the assistant header were trained).
"""
import re, os, copy, pytest, trl
from pathlib import Path
from chatft.models import DEMO_MODEL, load_tokenizer
from chatft.core import ChatftError
from chatft.template import (assistant_mask, with_template_tokens, render, _tokenize, _common_prefix,
                             prepare_messages, trained_indices, TRAIN_ON)

TRL_TEMPLATES = Path(trl.__file__).parent / "chat_templates"
MARKERS = re.compile(r"\{%-?\s*(?:end)?generation\s*-?%\}")
VISION = {"idefics3", "llava_next", "qwen2_5_vl", "qwen3_vl", "smolvlm", "lfm2_2_5_vl"}
NATIVE_MARKERS = ["lfm2_2_5", "lfm2_2_5_v2"]    # originals that already carry {% generation %}

def _families():
    fams = sorted(p.name[:-len("_training.jinja")] for p in TRL_TEMPLATES.glob("*_training.jinja"))
    return [f for f in fams if f not in VISION] + [f for f in NATIVE_MARKERS if (TRL_TEMPLATES/f"{f}.jinja").exists()]

def _training_template(fam):
    p = TRL_TEMPLATES/f"{fam}_training.jinja"
    return (p if p.exists() else TRL_TEMPLATES/f"{fam}.jinja").read_text()

# Families whose TRL markers train text that the template writes before a reply's words. chatft trains a
# reply from its first word: what comes before is either given to the model at inference (the generation
# prompt) or scaffolding the template writes around a reply that has no reasoning or channel (a chat export
# has only words). Every family here must differ from TRL, and every other family must not train such text.
BEFORE_WORDS_IN_GENERATION = {
    "deepseek_r1_distill": "the role token <｜Assistant｜> (the whole generation prompt minus '<think>\\n')",
    "deepseekv3": "the role token <｜Assistant｜> (the generation prompt minus '<think>\\n')",
    "glm4moe": "'\\n<think></think>\\n' written before a reply with no reasoning",
    "gptoss": "the header '<|start|>assistant' (the generation prompt) and '<|channel|>final<|message|>'",
    "muse_glimmer": "the header '<|start|>assistant' (the generation prompt) and ' to=user<|message|>'",
    "qwen2_5": "the newline after '<|im_start|>assistant' (the generation prompt is '<|im_start|>assistant\\n')",
    "qwen3": "the empty think block '<think>\\n\\n</think>\\n\\n' written before a reply with no reasoning",
    "nemotron_3_nano": "'<think></think>' (the generation prompt writes '<think>')",
    "nemotron_3_super": "'<think></think>' (the generation prompt writes '<think>')",
    "nemotron_3_ultra": "'<think></think>' (the generation prompt writes '<think>')",
    "nemotron_3_5_lightning": "'<think></think>' (the generation prompt writes '<think>')",
    "qwen3_5_nothink": "the empty think block '<think>\\n\\n</think>\\n\\n' (written by the generation prompt)",
    "qwen3_5_think": "'<think>\\n' (the generation prompt's) and '\\n</think>\\n\\n' around no reasoning",
    "qwen3_6": "'<think>\\n' (the generation prompt's) and '\\n</think>\\n\\n' around no reasoning",
    "qwen3_8": "'<think>\\n' (the generation prompt's) and '\\n</think>\\n\\n' around no reasoning",
}
# gpt-oss closes a reply with '<|end|>' when another message follows and with '<|return|>' when it is the
# last one. What the model emits after a reply is '<|return|>'; '<|end|>' is how the history re-renders it.
# chatft trains the last reply's '<|return|>' and, in earlier replies, their content but not '<|end|>'.
LAST_ONLY_END = {"gptoss": "<|end|>"}

CONVERSATIONS = [
    [dict(role="user", content="Hi there"), dict(role="assistant", content="Hello! How can I help?"),
     dict(role="user", content="Tell me a joke."), dict(role="assistant", content="Why did the chicken cross the road?\nTo get to the other side.")],
    [dict(role="system", content="Be brief."), dict(role="user", content="2+2?"), dict(role="assistant", content="4"),
     dict(role="user", content="and 3+3"), dict(role="assistant", content=" 6 ")],
    [dict(role="system", content="You answer in French.\nAlways."), dict(role="user", content="Café ou thé ? ☕"),
     dict(role="assistant", content="Café, bien sûr.\n\n- noir\n- sans sucre"), dict(role="user", content="Pourquoi?"),
     dict(role="assistant", content="Parce que c'est le matin."), dict(role="user", content="ok"),
     dict(role="assistant", content="```python\nprint('bonjour')\n```")],
    [dict(role="user", content="one line"), dict(role="assistant", content="one reply")],
]

@pytest.fixture(scope="module")
def demo_tok(): return load_tokenizer(DEMO_MODEL)

def _before_words_tokens(conv, tok, template, offsets):
    "Tokens inside an assistant turn that lie before the reply's words (found by searching the render for them)."
    full = render(conv, tok, chat_template=template)
    out = set()
    for i, m in enumerate(conv):
        if m["role"] != "assistant": continue
        lo = _common_prefix(render(conv[:i], tok, chat_template=template), full)
        c = m["content"]
        found = (full.find(v, lo) for v in (c, c.rstrip(), c.lstrip(), c.strip()))   # templates may strip it
        words = next((w for w in found if w >= 0), -1)
        assert words >= lo, f"reply {i} not found in the render"
        out |= {t for t, (a, b) in enumerate(offsets) if b > a and a >= lo and b <= words}
    return out

def _expected(fam, conv, tok, template, ids, offsets, trl_mask):
    exp = list(trl_mask)
    before = {t for t in _before_words_tokens(conv, tok, template, offsets) if exp[t]}
    shown = [tok.convert_ids_to_tokens(ids[t]) for t in sorted(before)]
    assert bool(before) == (fam in BEFORE_WORDS_IN_GENERATION), \
        f"{fam}: TRL trains {shown} before a reply's words: update BEFORE_WORDS_IN_GENERATION"
    for t in before: exp[t] = 0
    if fam in LAST_ONLY_END:
        end_id = tok.convert_tokens_to_ids(LAST_ONLY_END[fam])
        exp = [0 if t == end_id else e for t, e in zip(ids, exp)]
    return exp

@pytest.mark.parametrize("fam", _families())
def test_mask_equals_trl_training_template(fam, demo_tok):
    training = _training_template(fam)
    plain = MARKERS.sub("", training)
    assert not MARKERS.search(plain)
    tok = with_template_tokens(demo_tok, training + " <think> </think>")
    tested = 0
    for conv in CONVERSATIONS:
        try: trl_out = tok.apply_chat_template(conv, chat_template=training, tokenize=True, return_dict=True,
                                               return_assistant_tokens_mask=True)
        except Exception as e:
            if conv[0]["role"] == "system" and "system" in str(e).lower(): continue   # e.g. Gemma: "System role not supported"
            raise
        ids, mask = assistant_mask(conv, tok, chat_template=plain)
        assert ids == list(trl_out["input_ids"]), f"{fam}: the plain template renders different tokens"
        _, offsets = _tokenize(render(conv, tok, chat_template=plain), tok)
        expected = _expected(fam, conv, tok, plain, ids, offsets, trl_out["assistant_masks"])
        if mask != expected:
            diff = [(i, tok.convert_ids_to_tokens(ids[i]), expected[i], mask[i]) for i in range(len(ids)) if expected[i] != mask[i]]
            pytest.fail(f"{fam}: chatft's mask differs from TRL's at (token, expected, chatft): {diff[:10]}")
        if fam in BEFORE_WORDS_IN_GENERATION or fam in LAST_ONLY_END:
            assert mask != list(trl_out["assistant_masks"]), f"{fam}: documented as deviating but matches TRL exactly: update DEVIATIONS"
        assert sum(mask) > 0
        tested += 1
    assert tested >= 2, f"{fam}: fewer than two conversations could be rendered"

def test_all_text_families_covered():
    "Every *_training.jinja that TRL ships is either tested or a documented vision-language skip."
    fams = {p.name[:-len("_training.jinja")] for p in TRL_TEMPLATES.glob("*_training.jinja")}
    assert fams - VISION <= set(_families())
    assert len(fams - VISION) >= 20


# --- Only the trained turns' words (and what closes them) are trained: never system text or a header. ---
# Issue: in "me" mode with no system prompt the first trained message is the first of the conversation, and
# SmolLM2's injected default system prompt and the '<|im_start|>assistant' header were trained with it.
# The check below does not ask chatft where a reply is: it reads the trained text (the rendered characters
# under the trained tokens) and requires each trained run to be a piece of one trained message's words
# followed only by special tokens and whitespace (the end-of-turn token, and e.g. the newline after it).

# Families whose template refuses "me" mode: the swapped conversation starts with the assistant's turn (the
# user's first message becomes the first reply), and chatft renders it up to each reply. Cohere and Gemma need
# strict user/assistant alternation starting with the user; Qwen3.5+ need a user message in every render
# ("No user query found"), which the render up to the first reply does not have.
ME_REFUSED = {"cohere", "cohere2", "gemma", "gemma3", "qwen3_5_nothink", "qwen3_5_think", "qwen3_6", "qwen3_8"}

def _special_re(tok):
    specials = set(tok.all_special_tokens) | {t.content for t in tok.added_tokens_decoder.values() if t.special}
    return re.compile("(?:" + "|".join(re.escape(s) for s in sorted(specials, key=len, reverse=True)) + r"|\s)*")

def _trained_runs_text(full, offsets, mask):
    "The rendered text under each run of consecutive trained tokens."
    runs, cur = [], None
    for (a, b), m in zip(list(offsets) + [(0, 0)], list(mask) + [0]):
        if m: cur = (cur[0] if cur else a, b)
        elif cur: runs.append(full[cur[0]:cur[1]]); cur = None
    return runs

def _not_words(run, words, closing):
    "True unless `run` is a substring of one of `words` followed only by what `closing` matches."
    k = max((k for k in range(len(run) + 1) if any(run[:k] in w for w in words)), default=0)
    return closing.fullmatch(run[k:]) is None

def _bad_runs(msgs, tok, train_on, template=None):
    "Trained runs that are not the trained words (+ closing specials), trained messages left untrained, runs."
    ids, mask = assistant_mask(msgs, tok, train_on, chat_template=template)
    full = render(msgs, tok, chat_template=template)
    _, offsets = _tokenize(full, tok)
    words = [msgs[i]["content"] for i in trained_indices(msgs, train_on)]
    runs = _trained_runs_text(full, offsets, mask)
    bad = [r for r in runs if _not_words(r, words, _special_re(tok))]
    missing = [w for w in words if w.strip() and not any(w.strip() in r for r in runs)]
    return bad, missing, len(runs)

@pytest.mark.parametrize("fam", _families())
def test_only_trained_words_are_trained(fam, demo_tok):
    "Every mode, with and without a system prompt: trained text is the trained words + closing tokens."
    template = MARKERS.sub("", _training_template(fam))
    tok = with_template_tokens(demo_tok, template + " <think> </think>")
    tested, refused = [], []
    for train_on in TRAIN_ON:
        for system in (None, "Be brief."):
            for conv in CONVERSATIONS:
                msgs = prepare_messages([m for m in conv if m["role"] != "system"], system, train_on)
                try: bad, missing, _ = _bad_runs(msgs, tok, train_on, template)
                except ChatftError: refused.append((train_on, system)); continue
                case = f"{fam}, train_on={train_on!r}, system={system!r}"
                assert not bad, f"{case}: trained text that is not the trained words: {bad[:2]}"
                assert not missing, f"{case}: words not trained: {missing[:2]}"
                tested.append((train_on, system))
    refused = sorted(set(refused), key=str)
    assert ("assistant", None) in tested and ("last", None) in tested, f"{fam}: refused {refused}"
    assert fam in ME_REFUSED or ("me", None) in tested, f"{fam}: 'me' mode refused: {refused}"

@pytest.mark.parametrize("fam", _families())
def test_me_mode_without_system_trains_only_user_words(fam, demo_tok):
    "The issue's case on every family: 'me' mode, system=None, no injected system prompt or header trained."
    template = MARKERS.sub("", _training_template(fam))
    tok = with_template_tokens(demo_tok, template + " <think> </think>")
    n = 0
    for conv in CONVERSATIONS:
        msgs = prepare_messages([m for m in conv if m["role"] != "system"], None, "me")
        user_words = [m["content"] for m in conv if m["role"] == "user"]
        assert [m["content"] for m in msgs if m["role"] == "assistant"] == user_words[:len(user_words)]
        try: bad, missing, _ = _bad_runs(msgs, tok, "me", template)
        except ChatftError:
            assert fam in ME_REFUSED, f"{fam}: the template refuses 'me' mode without a system prompt"
            continue
        assert not bad and not missing, f"{fam}: trained {bad[:2]}, untrained user words {missing[:2]}"
        n += 1
    assert n == (0 if fam in ME_REFUSED else len(CONVERSATIONS)), f"{fam}: ME_REFUSED is out of date"

def test_me_mode_held_out_count(demo_tok):
    "Held-out: 200 synthetic conversations, 'me' mode, no system prompt: only the user's words are trained."
    from chatft.synth import synthetic_conversations
    bad = runs = 0
    for c in synthetic_conversations(200, seed=0):
        msgs = prepare_messages(c.messages, None, "me")
        b, missing, n = _bad_runs(msgs, demo_tok, "me")
        assert not missing, f"{c.id}: user words not trained: {missing[:1]}"
        bad += len(b)
        runs += n
    assert runs > 400
    assert bad == 0, f"{bad} of {runs} trained spans are not the user's words"

def _spans_one_by_one(msgs, tok, trained, template):
    "The spans as chatft found them before one render found every start: each start and end from its own renders."
    from chatft.template import _words_start
    full = render(msgs, tok, chat_template=template, fit=False)
    return full, [(_words_start(msgs, i, full, tok, template),
                   _common_prefix(render(msgs[:i+1], tok, chat_template=template, fit=False), full)) for i in trained]

@pytest.mark.parametrize("fam", _families())
def test_one_render_finds_the_spans_of_renders_one_by_one(fam, demo_tok):
    """`trained_spans` finds every reply's start from one render with marks (and skips the last reply's own render):
    the same spans as rendering a changed copy per reply, in every mode, with and without a system prompt."""
    from chatft.template import trained_spans, _words_starts
    template = MARKERS.sub("", _training_template(fam))
    tok = with_template_tokens(demo_tok, template + " <think> </think>")
    compared, by_marks = 0, 0
    for train_on in TRAIN_ON:
        for system in (None, "Be brief."):
            for conv in CONVERSATIONS:
                msgs = prepare_messages([m for m in conv if m["role"] != "system"], system, train_on)
                trained = trained_indices(msgs, train_on)
                try: want = _spans_one_by_one(msgs, tok, trained, template)
                except ChatftError: continue
                assert trained_spans(msgs, tok, trained, template) == want, (fam, train_on, system, msgs)
                by_marks += _words_starts(msgs, trained, want[0], tok, template) is not None
                compared += 1
    assert compared >= 8, (fam, compared)
    print(f"{fam}: {by_marks} of {compared} conversations by one marked render")
