"""Packing keeps examples apart: a packed batch gives the same logits and per-token losses as the same
examples run one by one (fp32, tolerance 1e-4), on sdpa and on eager attention.

Also shows why the 4D mask is needed: position_ids alone do not keep packed examples apart on sdpa/eager."""
import pytest, torch
from chatft.models import TINY_MODEL, DEMO_MODEL, load_model, load_tokenizer
from chatft.template import render_example
from chatft.dataset import PackedCollator, PaddedCollator, pack
from chatft.synth import synthetic_conversations

def _examples(tok, n=7):
    convs = [c for c in synthetic_conversations(30, seed=1) if any(m['role'] == 'assistant' for m in c.messages)]
    return [render_example(c.messages, tok, system=c.system) for c in convs[:n]]

def _single(model, ex):
    "Logits and per-token losses (next-token, -100 ignored) of one example on its own."
    ids = torch.tensor([ex['input_ids']]); labels = torch.tensor([ex['labels']])
    with torch.no_grad(): logits = model(input_ids=ids).logits[0].float()
    return logits, _token_losses(logits, labels[0])

def _token_losses(logits, labels):
    "Loss of predicting labels[t+1] from logits[t]; 0 where the label is -100."
    l = torch.nn.functional.cross_entropy(logits[:-1], labels[1:].clamp(min=0), reduction='none')
    return torch.where(labels[1:] != -100, l, torch.zeros_like(l))

def _check_packed(model, tok, examples, attn, max_length=1024, atol=1e-4):
    from datasets import Dataset
    ds = Dataset.from_list(examples)
    packed = pack(ds, max_length)
    assert any(len(s) > 1 for s in packed['seq_lengths']), "the test needs rows holding several examples"
    rows = packed.to_list()
    batch = PackedCollator(tok.pad_token_id, attn_implementation=attn)(rows)
    with torch.no_grad(): out = model(**batch)
    by_ids = {tuple(e['input_ids']): e for e in examples}
    n = 0
    for b, row in enumerate(rows):
        start = 0
        for m in row['seq_lengths']:
            ex = by_ids[tuple(row['input_ids'][start:start+m])]
            logits, losses = _single(model, ex)
            plog = out.logits[b, start:start+m].float()
            torch.testing.assert_close(plog, logits, atol=atol, rtol=0)
            plab = batch['labels'][b, start:start+m]
            torch.testing.assert_close(_token_losses(plog, plab), losses, atol=atol, rtol=0)
            start += m; n += 1
    assert n == len(examples)
    # the loss transformers computes on the packed batch is the mean over all trained tokens of the single runs
    singles = [_single(model, e)[1] for e in examples]
    n_tr = sum(int((torch.tensor(e['labels'][1:]) != -100).sum()) for e in examples)
    torch.testing.assert_close(out.loss, sum(s.sum() for s in singles)/n_tr, atol=atol, rtol=0)

@pytest.fixture(scope="module")
def tok(): return load_tokenizer(TINY_MODEL)

@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_equals_single(tok, attn):
    model = load_model(TINY_MODEL, attn_implementation=attn, dtype=torch.float32).eval()
    _check_packed(model, tok, _examples(tok), attn)

@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_position_ids_alone_do_not_separate(tok, attn):
    "The fact that motivates the 4D mask: without it, later examples in a row see the earlier ones."
    model = load_model(TINY_MODEL, attn_implementation=attn, dtype=torch.float32).eval()
    from datasets import Dataset
    examples = _examples(tok, 4)
    rows = pack(Dataset.from_list(examples), 1024).to_list()
    batch = PackedCollator(tok.pad_token_id, attn_implementation=attn)(rows)
    row = max(range(len(rows)), key=lambda b: len(rows[b]['seq_lengths']))
    m0, m1 = rows[row]['seq_lengths'][:2]
    ids = batch['input_ids'][row:row+1, :m0+m1]; pos = batch['position_ids'][row:row+1, :m0+m1]
    with torch.no_grad(): leaky = model(input_ids=ids, position_ids=pos).logits[0, m0:]
    alone = _single(model, dict(input_ids=rows[row]['input_ids'][m0:m0+m1], labels=rows[row]['labels'][m0:m0+m1]))[0]
    assert (leaky - alone).abs().max() > 1e-3

@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_mask(tok, dtype):
    "In fp16/bf16 the collator's mask is in the model's dtype; sdpa runs and packed ~ single."
    model = load_model(TINY_MODEL, attn_implementation="sdpa", dtype=dtype).eval()
    examples = _examples(tok, 4)
    from datasets import Dataset
    rows = pack(Dataset.from_list(examples), 1024).to_list()
    batch = PackedCollator(tok.pad_token_id, attn_implementation="sdpa", dtype=dtype)(rows)
    assert batch['attention_mask'].dtype == dtype
    with torch.no_grad(): out = model(**batch)
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.loss)

def test_flash_attention_gets_position_ids_only(tok):
    rows = [dict(input_ids=[1, 2, 3, 4, 5], labels=[-100, 2, 3, -100, 5], seq_lengths=[3, 2])]
    b = PackedCollator(0, attn_implementation="flash_attention_2", pad_to_multiple_of=1)(rows)
    assert 'attention_mask' not in b
    assert b['position_ids'].tolist() == [[0, 1, 2, 0, 1]]
    assert b['labels'].tolist() == [[-100, 2, 3, -100, 5]]

def test_padded_collator_keeps_eos_labels(tok):
    "pad == eos == <|im_end|> in SmolLM2: masking is by position, so every end-of-turn label survives."
    ex = _examples(tok, 3)
    b = PaddedCollator(tok.pad_token_id)(ex)
    assert int((b['labels'] != -100).sum()) == sum(sum(l != -100 for l in e['labels']) for e in ex)

def test_trainer_step_with_packed_batches(tok, tmp_path):
    "The 4D mask goes through transformers' Trainer unchanged (one real optimisation step)."
    from transformers import Trainer, TrainingArguments
    from datasets import Dataset
    model = load_model(TINY_MODEL, attn_implementation="sdpa", dtype=torch.float32)
    packed = pack(Dataset.from_list(_examples(tok)), 1024)
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=2, max_steps=2, report_to=[],
                             remove_unused_columns=False, use_cpu=True, save_strategy="no", logging_steps=1)
    tr = Trainer(model=model, args=args, train_dataset=packed, data_collator=PackedCollator(tok.pad_token_id))
    res = tr.train()
    assert res.global_step == 2 and res.training_loss > 0

@pytest.mark.slow
def test_packed_equals_single_demo_model():
    tok = load_tokenizer(DEMO_MODEL)
    for attn in ("sdpa", "eager"):
        model = load_model(DEMO_MODEL, attn_implementation=attn, dtype=torch.float32).eval()
        _check_packed(model, tok, _examples(tok, 5), attn, atol=1e-3)
