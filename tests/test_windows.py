"""`windows` (notebook 04) guesses where a long conversation's windows end from its whole render and checks the guess
with a real render or two (issue 28): the windows must be exactly those of trying every end in turn, as it did before,
for every template family TRL ships, every mode, with and without a system prompt, and at lengths where the guess is
wrong."""
import random, pytest
from chatft.core import ChatftError
from chatft.dataset import windows
from chatft.models import DEMO_MODEL, load_tokenizer
from chatft.template import render_example, with_template_tokens, TRAIN_ON
from test_template import MARKERS, _families, _training_template

def windows_before(messages, tokenizer, max_length, system=None, train_on="assistant", chat_template=None):
    "`windows` as it was before issue 28 (commit a9f8544): every end tried, one render and tokenization each."
    kw = dict(tokenizer=tokenizer, system=system, train_on=train_on, chat_template=chat_template)
    ex = render_example(messages, **kw)
    if len(ex['input_ids']) <= max_length: return [ex], []
    if train_on == "last":
        for a in range(1, len(messages)):
            ex = render_example(messages[a:], **kw)
            if len(ex['input_ids']) <= max_length: return [ex], [("context cut to fit", a, None)]
        return [], [("last reply longer than max_length", len(messages)-1, len(ex['input_ids']))]
    msgs = [m for m in messages if m['role'] in ('user', 'assistant')]
    role = 'user' if train_on == "me" else 'assistant'
    ends = [i+1 for i,m in enumerate(msgs) if m['role'] == role]
    starts = [i for i,m in enumerate(msgs) if m['role'] != role] or [0]
    out, problems, a = [], [], 0
    while a < len(msgs):
        best = None
        for b in (e for e in ends if e > a):
            ex = render_example(msgs[a:b], **kw)
            if len(ex['input_ids']) > max_length: break
            best = (b, ex)
        if best is None:
            b = next((e for e in ends if e > a), None)
            if b is None: break
            problems.append(("reply longer than max_length", b-1, len(render_example(msgs[a:b], **kw)['input_ids'])))
        else:
            b = best[0]; out.append(best[1])
        a = next((s for s in starts if s >= b), len(msgs))
    return out, problems

WORDS = ("the cat sat on a warm mat while rain fell outside and we spoke of code tea boats maps "
         "café naïve ☕ 42 3.14 print('x') {json: 1} — …").split()

def _conversations(n=4, seed=0):
    "Long conversations: replies of very different lengths, two messages of one role in a row, a reply first."
    rng = random.Random(seed)
    say = lambda k: " ".join(rng.choice(WORDS) for _ in range(k))
    out = []
    for c in range(n):
        msgs = [dict(role="assistant", content="Welcome back.")] if c == 1 else []
        for t in range(rng.randint(5, 9)):
            msgs.append(dict(role="user", content=say(rng.choice((2, 8, 30)))))
            if c == 2 and t == 2: msgs.append(dict(role="user", content="and also " + say(5)))
            msgs.append(dict(role="assistant", content=say(rng.choice((3, 20, 60, 140)))))
        out.append(msgs)
    return out

@pytest.fixture(scope="module")
def demo_tok(): return load_tokenizer(DEMO_MODEL)

def _same(msgs, tok, n, system, train_on, template):
    try: want = windows_before(msgs, tok, n, system, train_on, template)
    except ChatftError as e: want = str(e)
    try: got = windows(msgs, tok, n, system, train_on, template)
    except ChatftError as e: got = str(e)
    assert got == want, (n, system, train_on)
    return want

@pytest.mark.parametrize("fam", _families())
def test_windows_are_those_of_trying_every_end(fam, demo_tok):
    template = MARKERS.sub("", _training_template(fam))
    tok = with_template_tokens(demo_tok, template + " <think> </think>")
    base = len(render_example([dict(role="user", content="Hi"), dict(role="assistant", content="Hello")], tok,
                              chat_template=template)['input_ids'])         # what the template writes around a reply
    many = 0
    for msgs in _conversations(3):
        for n in (base + 40, base + 250):
            for train_on in TRAIN_ON:
                for system in (None, "Be brief."):
                    want = _same(msgs, tok, n, system, train_on, template)
                    many += not isinstance(want, str) and len(want[0]) > 1
    assert many >= 4, (fam, many)    # conversations that made several windows: the guess was used

def test_windows_of_the_demo_template_at_every_length(demo_tok):
    "The demo model's own template at lengths from 30 to 600 tokens, 11 apart."
    msgs = _conversations(1, seed=3)[0]
    for n in range(30, 600, 11):
        _same(msgs, demo_tok, n, None, "assistant", None)

def test_a_reply_alone_too_long_in_last_mode(demo_tok):
    "One message longer than `max_length` with `train_on='last'`: no window, the problem named (it raised before)."
    msgs = [dict(role="assistant", content=" ".join(WORDS) * 3)]
    got = _same(msgs, demo_tok, 20, None, "last", None)
    assert got[0] == [] and got[1][0][0] == "last reply longer than max_length", got

@pytest.fixture
def sliced(monkeypatch):
    "Windows' tokens taken from the whole render with none tokenized to check them (`_SLICE_CHECKS = 0`), counted."
    import chatft.template as T
    monkeypatch.setattr(T, "_SLICE_CHECKS", 0)
    count, slice_ = {"sliced": 0, "tokenized": 0}, T._Slices.slice
    def counted(self, w):
        got = slice_(self, w); count["sliced" if got is not None else "tokenized"] += 1; return got
    monkeypatch.setattr(T._Slices, "slice", counted)
    return count

def test_windows_sliced_from_the_whole_render(sliced, demo_tok):
    "Every template family (above) and the demo template again, each window's tokens taken from the whole render."
    for fam in _families():
        template = MARKERS.sub("", _training_template(fam))
        tok = with_template_tokens(demo_tok, template + " <think> </think>")
        for msgs in _conversations(2):
            for train_on in TRAIN_ON:
                for system in (None, "Be brief."): _same(msgs, tok, 180, system, train_on, template)
    for n in range(30, 600, 37): _same(_conversations(1, seed=3)[0], demo_tok, n, None, "assistant", None)
    assert sliced["sliced"] > 4 * sliced["tokenized"], sliced      # most windows were sliced (measured: 88%)

@pytest.mark.parametrize("name", ["chatft/tiny-random-llama2", "chatft/tiny-random-mistral", "prepend first"])
def test_windows_sliced_with_sentencepiece_tokenizers(name, sliced):
    """Llama 2's and Mistral v0.1's SentencePiece tokenizers (Metaspace, a '▁' before each piece) with their own
    templates, and Llama 2's with `prepend_scheme='first'` (a '▁' only before the text's first piece)."""
    from tokenizers.pre_tokenizers import Metaspace
    tok = load_tokenizer("chatft/tiny-random-llama2" if name == "prepend first" else name)
    if name == "prepend first": tok.backend_tokenizer.pre_tokenizer = Metaspace(prepend_scheme="first")
    for msgs in _conversations(3):
        for n in (80, 200, 400):
            for train_on in TRAIN_ON:
                for system in (None, "Be brief."): _same(msgs, tok, n, system, train_on, None)
    assert sliced["sliced"], sliced     # Llama 2: 56% sliced; Mistral v0.1: 2% ([INST] is not an added token)

def test_a_tokenizer_whose_slices_differ_is_not_sliced_again(monkeypatch, demo_tok):
    "The first windows of a tokenizer are tokenized as well; one that differs turns slicing off for that tokenizer."
    import chatft.template as T
    monkeypatch.setattr(T, "_TOKENIZERS", {})
    wrong = lambda self, w: ([0], [(0, 1)])                 # a slice that is not the window's tokens
    monkeypatch.setattr(T._Slices, "slice", wrong)
    msgs = _conversations(1, seed=3)[0]
    for n in (60, 120, 240): _same(msgs, demo_tok, n, None, "assistant", None)   # still the windows of before
    assert T._TOKENIZERS[id(demo_tok)][3] is False
