"""Useful-token fraction and training throughput of four ways to batch the same conversations.

    python benchmarks/bench_dataset.py [--model chatft/tiny-random-smollm2] [--n 120] [--steps 6] [--input my.jsonl]

1. guide:   the guide's recipe: every example padded to 2048 with pad_token = eos_token and a plain LM
            collator (transformers' DataCollatorForLanguageModeling, mlm=False): trains on every token,
            and masks every label equal to the pad id (= <|im_end|> on SmolLM2).
2. dynamic: chatft's masks, padded per batch to the longest example (chatft.dataset.PaddedCollator).
3. trl:     TRL SFTTrainer's defaults (trl 1.16, read from trl/trainer/sft_config.py): packing=False,
            padding_free=False, max_length=1024 (truncate, keep start), assistant_only_loss=False and
            completion_only_loss=None (a "messages" dataset has no completion: loss on the whole sequence),
            dynamic padding by its own collator, per_device_train_batch_size=8. We build a real SFTTrainer
            and use its processed dataset and collator.
4. chatft:  chatft's masks, packed best-fit-decreasing into rows of 2048 with a block-diagonal 4D mask.

Fractions are over computed tokens (rows x padded length): real = non-padding tokens; trained = tokens the
loss grades; useful = reply tokens (chatft's mask: the replies and their end-of-turn) that the loss grades.
Throughput: a few real forward+backward+AdamW steps of each on this CPU, same model, fp32, sdpa.
"""
import argparse, time, random, tempfile, os, warnings
os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("TQDM_DISABLE", "1")
warnings.filterwarnings("ignore")
import torch
from datasets import Dataset
from chatft.models import TINY_MODEL, DEMO_MODEL, load_tokenizer, load_model
from chatft.synth import synthetic_conversations
from chatft.core import read_jsonl
from chatft.template import render_example
from chatft.dataset import prepare, pack, PackedCollator, PaddedCollator

def batches(rows, bs): return [rows[i:i+bs] for i in range(0, len(rows), bs)]

def fractions(batch_list, useful_labels):
    "computed, real, trained, useful tokens over the whole dataset."
    comp = real = trained = useful = 0
    for b, ul in zip(batch_list, useful_labels):
        comp += b['input_ids'].numel()
        real += int(b['real'].sum())
        trained += int((b['labels'][:, 1:] != -100).sum())
        useful += ul
    return comp, real, trained, useful

def timed_steps(model, batch_list, steps):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model.train()
    b = batch_list[0]; model(**{k: v for k, v in b.items() if k != 'real'}).loss.backward(); opt.zero_grad()   # warm-up
    t0, real = time.perf_counter(), 0
    for b in batch_list[:steps]:
        out = model(**{k: v for k, v in b.items() if k != 'real'})
        out.loss.backward(); opt.step(); opt.zero_grad()
        real += int(b['real'].sum())
    return real / (time.perf_counter() - t0), min(steps, len(batch_list))

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=TINY_MODEL); ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--steps", type=int, default=6); ap.add_argument("--input", default=None)
    ap.add_argument("--max-length", type=int, default=2048)
    a = ap.parse_args()
    torch.manual_seed(0)
    L = a.max_length
    tok = load_tokenizer(a.model)
    convs = read_jsonl(a.input) if a.input else synthetic_conversations(a.n, seed=0)
    convs = [c for c in convs if any(m['role'] == 'assistant' for m in c.messages)]
    dsd, _ = prepare(convs, tok, max_length=L, test_size=0.0, check=False)
    ds = dsd['train']
    rows = [dict(input_ids=r['input_ids'], labels=r['labels']) for r in ds]
    random.Random(0).shuffle(rows)
    useful = lambda r: sum(l != -100 for l in r['labels'][1:])
    out = {}

    # 1. the guide: pad to 2048 with pad = eos, LM collator (labels = input_ids, pad id -> -100)
    from transformers import DataCollatorForLanguageModeling
    t = load_tokenizer(a.model); t.pad_token = t.eos_token
    lm = DataCollatorForLanguageModeling(t, mlm=False)
    def guide_batch(rs):
        b = lm([t.pad({"input_ids": r['input_ids']}, padding="max_length", max_length=L) for r in rs])
        b['real'] = torch.tensor([len(r['input_ids']) for r in rs]); return dict(b)
    gb = [guide_batch(b) for b in batches(rows, 1)]
    # useful for the guide: reply tokens whose labels survive the pad-id masking
    gu = [sum(int(b['labels'][0, i] != -100) for i, l in enumerate(r['labels']) if l != -100 and i > 0) for b, r in zip(gb, rows)]
    out['guide (pad to 2048, pad=eos, LM collator)'] = (gb, gu, 1)

    # 2. dynamic padding with chatft's masks
    pc = PaddedCollator(tok.pad_token_id)
    def dyn_batch(rs):
        b = pc(rs); b['real'] = b['attention_mask'].sum(1); return b
    db = [dyn_batch(b) for b in batches(rows, 8)]
    out['dynamic padding (chatft masks)'] = (db, [sum(map(useful, b)) for b in batches(rows, 8)], 8)

    # 3. TRL SFTTrainer defaults
    from trl import SFTTrainer, SFTConfig
    model = load_model(a.model, dtype=torch.float32, attn_implementation="sdpa")
    msgs = [dict(messages=[dict(role=m['role'], content=m['content']) for m in ([dict(role='system', content=c.system)] if c.system else []) + c.messages
                           if m['role'] in ('system', 'user', 'assistant')]) for c in convs]
    cfg = SFTConfig(output_dir=tempfile.mkdtemp(), report_to=[], use_cpu=True, dataset_num_proc=None)
    print(f"TRL {__import__('trl').__version__} SFTConfig defaults: packing={cfg.packing} padding_free={cfg.padding_free} max_length={cfg.max_length} "
          f"assistant_only_loss={cfg.assistant_only_loss} completion_only_loss={cfg.completion_only_loss} batch={cfg.per_device_train_batch_size}")
    tr = SFTTrainer(model=model, args=cfg, train_dataset=Dataset.from_list(msgs), processing_class=tok)
    trows = [dict(input_ids=r['input_ids']) | ({'labels': r['labels']} if 'labels' in r else {}) for r in tr.train_dataset]
    random.Random(0).shuffle(trows)
    bsz = cfg.per_device_train_batch_size
    tb = []
    for b in batches(trows, bsz):
        x = dict(tr.data_collator(b)); x['real'] = x['attention_mask'].sum(1); tb.append(x)
    # useful for TRL: reply tokens it trains. Its rows are the same renders (without chatft's dropped trailing turns),
    # so count per conversation the reply tokens from chatft's mask that fall within TRL's (truncated) row.
    by_first = {}
    for r in rows: by_first.setdefault(tuple(r['input_ids'][:64]), r)
    tu = []
    for b in batches(trows, bsz):
        n = 0
        for r in b:
            m = by_first.get(tuple(r['input_ids'][:64]))
            if m: n += sum(1 for i, l in enumerate(m['labels'][:len(r['input_ids'])]) if l != -100 and i > 0)
        tu.append(n)
    out[f'TRL SFTTrainer defaults'] = (tb, tu, bsz)

    # 4. chatft packing
    packed = pack(Dataset.from_list(rows), L).to_list()
    kc = PackedCollator(tok.pad_token_id, attn_implementation="sdpa")
    def packed_batch(rs):
        b = kc(rs); b['real'] = torch.tensor([sum(r['seq_lengths']) for r in rs]); return b
    pb = [packed_batch(b) for b in batches(packed, 1)]
    out['chatft packing'] = (pb, [sum(sum(1 for l in r['labels'][s+1:s+m] if l != -100) for s, m in zip([0]+list(__import__('itertools').accumulate(r['seq_lengths']))[:-1], r['seq_lengths'])) for r in packed], 1)

    print(f"\n{len(rows)} examples from {len(convs)} conversations, {sum(len(r['input_ids']) for r in rows)} tokens; model {a.model}; {a.steps} timed steps each\n")
    head = f"{'batching':<44}{'rows/batch':>11}{'computed':>11}{'real %':>8}{'trained %':>10}{'useful %':>9}{'real tok/s':>12}{'useful tok/s':>13}"
    print(head); print("-"*len(head))
    res = {}
    for name, (bl, ul, bs) in out.items():
        comp, real, trained, usef = fractions(bl, ul)
        model = load_model(a.model, dtype=torch.float32, attn_implementation="sdpa")
        tps, n = timed_steps(model, bl, a.steps)
        res[name] = (real/comp, tps)
        print(f"{name:<44}{bs:>11}{comp:>11}{100*real/comp:>8.1f}{100*trained/comp:>10.1f}{100*usef/comp:>9.1f}{tps:>12.0f}{tps*usef/real:>13.0f}")
    best = max(res, key=lambda k: res[k][1])
    print(f"\nhighest real-token throughput: {best}; chatft packing real fraction {res['chatft packing'][0]:.3f}")

if __name__ == "__main__": main()
