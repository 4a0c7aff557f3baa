"""Held-out loss for the time spent: four ways to fine-tune the demo model on the same conversations, for the same
wall-time budget, in interleaved rounds (median of the rounds reported), plus the bare training-step ceiling.

Rows (all: SmolLM2-135M-Instruct, LoRA r=16 / alpha 32 / dropout 0 on all linear layers, the same train split):
- guide: the recipe this project grew from: every example padded to 2048 tokens, pad = eos, plain LM labels
  (DataCollatorForLanguageModeling: it learns the template and the user turns), batch 1, lr 1e-3 constant, fp32;
- trl-defaults: TRL's SFTTrainer on the conversations (`messages`) at its real defaults (batch 8, lr 2e-5, linear
  decay over 3 epochs, bf16 autocast, gradient checkpointing); only the LoRA config, `use_cpu`, no saving/reporting;
- trl-best: TRL at its best settings for this task: assistant_only_loss (SmolLM2's template with `{% generation %}`
  markers: TRL ships none for it), packing (BFD) with padding-free batches (on by itself with BFD; the model's SDPA
  mask is built from position_ids), lr 2e-4 (TRL's LoRA guidance), no gradient checkpointing (the CPU has the memory),
  bf16 autocast, batch 1 (`--trl-best-batch`) and max_length 256: the best of the settings tried here, one round
  of 60 s each on the ShareGPT sample (held-out loss): packed to 1024 tokens (TRL's default length) 1.919 in 10
  steps, not packed 0.350 in 100 steps, packed to 256 (the shortest length that holds every conversation) 0.300 in
  54 steps. At TRL's
  default batch of 8 a step of 8 x 1024 tokens takes ~35 s here: two steps a minute. `--trl-best KEY=VALUE`
  changes any SFTConfig setting (e.g. `packing=false padding_free=false`, `max_length=1024`);
- chatft: `chatft.train.plan_training(model, data, minutes=budget)` and `chatft.train.train` as a user runs them
  (the plan's measured warm-up happens before the clock starts, as TRL's tokenizing does), its evaluations on the
  held-out rows included: they run inside the budget, and their share of it is the last column (the plan keeps it
  under 10%); `--plan KEY=VALUE` sets any plan field (e.g. `micro_batch=2`).

Data: the synthetic export (`chatft.synth`, 500 conversations by default, `--conversations`), cleaned and prepared as
chatft does, so the held-out conversations are the most recent ones and none repeats a training reply. The ShareGPT
sample the table used before (`--data sharegpt`) cannot be split honestly: every one of its conversations repeats a
reply of another word for word (`benchmarks/bench_split.py`), so a loss "held out" there measured memorising.

Columns: held-out loss (mean loss per assistant token of the held-out conversations, scored by one function, fp32,
after the budget), optimizer steps, real tokens/s (no padding), the time to reach the final held-out loss of the
trl-defaults run of the same round (snapshots of the adapter at the first step ending after 1/8, 1/4, 1/2, 3/4 of
the budget: the first one at or below it), and each loop's computed tokens/s (padding included) as a fraction of the bare forward+backward+AdamW loop
on chatft's batch shape measured in the same round (`ceiling`: the best of fp32 and, where this CPU has it,
bf16 autocast); once per run also at 1x1024 tokens, and chatft's loop as a fraction of the best of the two. The load
average before and after is printed: the machine should be quiet.

    HF_HUB_OFFLINE=1 python benchmarks/bench_train.py --seconds 60           # 3 rounds, ~20 min on 2 quiet cores
    HF_HUB_OFFLINE=1 python benchmarks/bench_train.py --seconds 10 --rounds 1 --rows chatft trl-defaults   # smoke
"""
import argparse, json, math, os, statistics, sys, tempfile, time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TQDM_DISABLE", "1")
SAMPLE = Path(__file__).resolve().parents[2]/"shared"/"samples"/"sharegpt__lm-sys-FastChat__data__dummy_conversation.json"
ROWS = ["guide", "trl-defaults", "trl-best", "chatft"]
MARKS = (1/8, 1/4, 1/2, 3/4)
# SmolLM2's own template, with TRL's generation markers around what the assistant says (its content, <|im_end|>, "\n")
GENERATION_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n'}}{% if message['role'] == 'assistant' %}{% generation %}"
    "{{ message['content'] + '<|im_end|>' + '\\n' }}{% endgeneration %}{% else %}"
    "{{ message['content'] + '<|im_end|>' + '\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")

def load_avg()->str: return " ".join(f"{x:.2f}" for x in os.getloadavg())

def data(which:str="synthetic", n:int=500):
    "(tokenizer, DatasetDict(train, test) as chatft prepares it, train conversations, where they came from)."
    from chatft.export import read_export
    from chatft.synth import synthetic_conversations
    from chatft.clean import clean
    from chatft.models import DEMO_MODEL, load_tokenizer
    from chatft.dataset import prepare
    tok = load_tokenizer(DEMO_MODEL)
    if which == "sharegpt": convs, src = read_export(SAMPLE)[0], f"ShareGPT sample ({SAMPLE.name})"
    else: convs, src = clean(synthetic_conversations(n, seed=0), tokenizer=tok)[0], f"synthetic export ({n} conversations, cleaned)"
    dsd, _ = prepare(convs, tok, max_length=512, test_size=0.1, seed=0)
    ids = set(dsd["train"]["id"])
    return tok, dsd, [c for c in convs if c.id in ids], src

def lora():
    from peft import LoraConfig
    return LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")

class Counted:
    """A collator wrapped to note each batch's real tokens (no padding) and computed tokens (the batch's size).
    accelerate's dataloader fetches one batch ahead (to know which is the last), so the batches made outrun the steps
    trained: `upto(n)` counts the first `n` batches only."""
    def __init__(self, collate): self.collate, self.batches = collate, []
    def __call__(self, rows):
        b = self.collate(rows)
        real = sum(sum(r["attention_mask"]) if "attention_mask" in r else len(r["input_ids"]) for r in rows)
        self.batches.append((real, b["input_ids"].numel()))
        return b
    def upto(self, n:int)->tuple: return tuple(map(sum, zip(*self.batches[:n]))) if n else (0, 0)

def meter(seconds:float):
    "A TrainerCallback that counts tokens, snapshots the adapter at `MARKS` of the budget and stops at the budget."
    import torch
    from transformers import TrainerCallback
    class Meter(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kw):
            self.model, self.snaps, self.paused = model, [], 0.0
            self.t0 = time.perf_counter()
        def elapsed(self): return time.perf_counter() - self.t0 - self.paused
        def snapshot(self, state):
            t = time.perf_counter()
            w = {n: p.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad}
            self.snaps.append((self.elapsed(), state.global_step, w))
            self.paused += time.perf_counter() - t
        def on_step_end(self, args, state, control, **kw):
            # time and tokens up to the end of the last step: an evaluation or save after it is not training
            el = self.seconds = self.elapsed()
            self.steps = state.global_step
            self.real, self.computed = self.count.upto(state.global_step*args.gradient_accumulation_steps)
            if el >= seconds: control.should_training_stop = True
            elif len(self.snaps) < len(MARKS) and el >= MARKS[len(self.snaps)]*seconds: self.snapshot(state)
    return Meter()

def run_guide(tok, dsd, train_convs, out, cb):
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments, DataCollatorForLanguageModeling
    from peft import get_peft_model
    from chatft.models import DEMO_MODEL, load_model, load_tokenizer
    tok = load_tokenizer(DEMO_MODEL)
    tok.pad_token = tok.eos_token
    texts = [tok.apply_chat_template(c.messages, tokenize=False) for c in train_convs]
    ds = Dataset.from_dict({"text": texts}).map(lambda b: tok(b["text"], padding="max_length", truncation=True, max_length=2048),
                                                batched=True, remove_columns=["text"])
    args = TrainingArguments(output_dir=out, learning_rate=1e-3, lr_scheduler_type="constant", max_steps=10**6, report_to=[],
                             save_strategy="no", eval_strategy="no", use_cpu=True, logging_steps=10, per_device_train_batch_size=1,
                             disable_tqdm=True)
    return Trainer(model=get_peft_model(load_model(DEMO_MODEL), lora()), args=args, train_dataset=ds, callbacks=[cb],
                   data_collator=DataCollatorForLanguageModeling(tok, mlm=False), processing_class=tok)

def run_trl(tok, dsd, train_convs, out, cb, best:bool, best_batch:int=1, best_overrides:dict|None=None):
    from datasets import Dataset
    from trl import SFTTrainer, SFTConfig
    from chatft.models import DEMO_MODEL, load_tokenizer, model_path
    tok = load_tokenizer(DEMO_MODEL)
    ds = Dataset.from_dict({"messages": [c.messages for c in train_convs]})
    kw = dict(output_dir=out, report_to=[], save_strategy="no", use_cpu=True, disable_tqdm=True)
    if best:
        tok.chat_template = GENERATION_TEMPLATE
        kw.update({**dict(assistant_only_loss=True, packing=True, padding_free=True, learning_rate=2e-4, gradient_checkpointing=False, max_length=256,
                          per_device_train_batch_size=best_batch), **(best_overrides or {})})
    return SFTTrainer(model=str(model_path(DEMO_MODEL)), args=SFTConfig(**kw), train_dataset=ds, processing_class=tok,
                      peft_config=lora(), callbacks=[cb])

def score(model, tok, dsd)->float:
    from chatft.train import heldout_loss
    from chatft.dataset import PackedCollator, pack
    return heldout_loss(model, pack(dsd["test"], 512), PackedCollator(tok.pad_token_id))

def load_weights(model, w):
    import torch
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n in w: p.copy_(w[n])

def time_to(target:float, curve:list)->float|None:
    """The first time of a measured (seconds, loss) point at or below `target` (no interpolation: a loss changes only when
    a step ends, and snapshots are taken at step ends); None if it never gets there."""
    return next((t for t, l in curve if l <= target), None)

def one(row:str, seconds:float, tok, dsd, train_convs, base:float, target:float|None, best_batch:int=1, overrides:dict|None=None,
        best_overrides:dict|None=None)->dict:
    "Train `row` for `seconds`; score it after the budget and, while needed, at the snapshots."
    import torch
    torch.manual_seed(0)
    out, cb = tempfile.mkdtemp(prefix=f"bench-{row}-"), meter(seconds)
    if row == "chatft":
        from chatft.train import plan_training, train
        from chatft.models import DEMO_MODEL
        import chatft.train
        collator_for = chatft.train.collator_for                  # count the tokens of the batches `train` makes
        chatft.train.collator_for = lambda plan, tok: setattr(cb, "count", Counted(collator_for(plan, tok))) or cb.count
        plan = plan_training(DEMO_MODEL, dsd, minutes=seconds/60, save_steps=10**6, **(overrides or {}))
        try: trainer = train(plan, dsd, Path(out)/"run", tokenizer=tok, live=False, progress_bar=False, callbacks=[cb])
        finally: chatft.train.collator_for = collator_for
        extra = dict(plan=dict(precision=plan.precision, max_length=plan.max_length, micro_batch=plan.micro_batch,
                               grad_accum=plan.grad_accum, lr=plan.lr, max_steps=plan.max_steps, eval_steps=plan.eval_steps,
                               eval_rows=plan.eval_rows, measured_tps=round(plan.tokens_per_second, 1),
                               measured_eval_tps=round(plan.eval_tokens_per_second, 1)),
                     # evaluations before the last step ran inside the measured time; the one after it did not
                     eval_share=sum(h["eval_runtime"] for h in trainer.state.log_history
                                    if "eval_loss" in h and h["step"] < cb.steps)/cb.seconds,
                     best_step=trainer.state.best_global_step)
    else:
        trainer = run_guide(tok, dsd, train_convs, out, cb) if row == "guide" else run_trl(tok, dsd, train_convs, out, cb, row == "trl-best", best_batch, best_overrides)
        trainer.data_collator = cb.count = Counted(trainer.data_collator)
        trainer.train()
        extra = {}
    model = trainer.model
    final = score(model, tok, dsd)
    curve, target = [(0.0, base)], final if target is None else target
    if row != "trl-defaults" and final <= target:         # when it got there: score the snapshots until one has
        for t, step, w in cb.snaps:
            load_weights(model, w)
            curve.append((t, score(model, tok, dsd)))
            if curve[-1][1] <= target: break
    curve.append((cb.seconds, final))
    return dict(row=row, heldout=final, steps=cb.steps, seconds=cb.seconds, real_tps=cb.real/cb.seconds,
                computed_tps=cb.computed/cb.seconds, tokens_per_step=cb.computed/max(cb.steps, 1),
                to_target=time_to(target, curve) if row != "trl-defaults" else cb.seconds, curve=curve, **extra)

def ceiling(max_length:int, micro_batch:int, steps:int=3)->dict:
    "Tokens/s of a bare forward+backward+AdamW loop (random tokens, causal mask) on the demo model with the same LoRA."
    import torch
    from peft import get_peft_model
    from chatft.models import DEMO_MODEL, load_model
    from chatft.train import cpu_bf16
    model = get_peft_model(load_model(DEMO_MODEL), lora())
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    ids = torch.randint(100, 40000, (micro_batch, max_length), generator=torch.Generator().manual_seed(0))
    res = {}
    for name in (["fp32", "bf16"] if cpu_bf16() else ["fp32"]):
        ts = []
        for _ in range(steps+1):
            t = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=name == "bf16"):
                loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            ts.append(time.perf_counter() - t)
        res[name] = ids.numel()/statistics.median(ts[1:])
    return res

def fmt(x, spec, none="-"): return none if x is None else format(x, spec)

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=60, help="training budget per run")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--rows", nargs="+", default=ROWS, choices=ROWS)
    p.add_argument("--trl-best-batch", type=int, default=1, help="trl-best's per-device batch")
    p.add_argument("--plan", nargs="*", default=[], metavar="KEY=VALUE", help="settings for chatft's plan (e.g. micro_batch=2)")
    p.add_argument("--trl-best", nargs="*", default=[], metavar="KEY=VALUE", help="more SFTConfig settings for trl-best (e.g. packing=false)")
    p.add_argument("--json", help="also write every run's numbers here")
    p.add_argument("--data", choices=["synthetic", "sharegpt"], default="synthetic")
    p.add_argument("--conversations", type=int, default=500, help="size of the synthetic export")
    a = p.parse_args()
    from chatft.core import quiet
    quiet()
    import torch
    print(f"load average before: {load_avg()} ({os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads)", flush=True)
    tok, dsd, train_convs, src = data(a.data, a.conversations)
    from chatft.models import DEMO_MODEL, load_model
    from chatft.train import cpu_bf16, _CPU_BF16
    base = score(load_model(DEMO_MODEL), tok, dsd)
    bf16 = cpu_bf16()
    print(f"data: {src}: {len(dsd['train'])} train / {len(dsd['test'])} held-out conversations; held-out loss of the "
          f"base model {base:.3f}; bf16 probe x{_CPU_BF16.get('speedup', float('nan')):.2f} -> {'bf16' if bf16 else 'fp32'}", flush=True)
    runs, ceilings = [], []
    settings = lambda xs: {k: json.loads(v) if v[:1].isdigit() or v in ("true", "false") else v for k, v in (x.split("=", 1) for x in xs)}
    overrides, best_overrides = settings(a.plan), settings(a.trl_best)
    rows = [r for r in ROWS if r in a.rows]
    for k in range(a.rounds):
        others = [r for r in rows if r != "trl-defaults"]
        order = (["trl-defaults"] if "trl-defaults" in rows else []) + others[k % max(len(others), 1):] + others[:k % max(len(others), 1)]
        target = None
        for row in order:
            r = one(row, a.seconds, tok, dsd, train_convs, base, target, a.trl_best_batch, overrides, best_overrides)
            if row == "trl-defaults": target = r["heldout"]
            r["round"] = k
            runs.append(r)
            print(json.dumps({k2: (round(v, 4) if isinstance(v, float) else v) for k2, v in r.items() if k2 != "curve"}), flush=True)
            if row == "chatft":
                c = ceiling(r["plan"]["max_length"], r["plan"]["micro_batch"])
                ceilings.append(c)
                print(f"ceiling (bare loop, {r['plan']['micro_batch']}x{r['plan']['max_length']} tokens): "
                      + ", ".join(f"{n} {v:.0f} tok/s" for n, v in c.items()), flush=True)
    wide = ceiling(1024, 1) if "chatft" in rows else {}
    if wide: print(f"ceiling (bare loop, 1x1024 tokens): " + ", ".join(f"{n} {v:.0f} tok/s" for n, v in wide.items()), flush=True)
    report(runs, ceilings, a, src, base, wide)
    if a.json: Path(a.json).write_text(json.dumps(dict(runs=runs, ceilings=ceilings, ceiling_1024=wide), indent=1, default=str))

def report(runs, ceilings, a, src, base, wide=None):
    med = lambda xs: statistics.median(xs) if xs else None
    ceil = med([max(c.values()) for c in ceilings])
    print(f"\n{src}; SmolLM2-135M-Instruct + LoRA r=16; {a.seconds:g} s of training per run; median of {a.rounds} "
          f"interleaved round(s); held-out loss of the base model {base:.3f}; load average now {load_avg()}\n")
    print("| row | held-out loss | steps | real tok/s | computed tok/s | of ceiling | time to trl-defaults' loss | evaluation share |")
    print("|---|---|---|---|---|---|---|---|")
    for row in ROWS:
        rs = [r for r in runs if r["row"] == row]
        if not rs: continue
        reach = [r["to_target"] for r in rs]
        hit = [x for x in reach if x is not None]
        to = (f"{med(hit):.1f} s" if len(hit) == len(reach) else f"{med(hit):.1f} s ({len(hit)}/{len(reach)} rounds)" if hit
              else "not reached")
        frac = f"{med([r['computed_tps'] for r in rs])/ceil:.2f}" if ceil else "-"
        share = f"{med([r['eval_share'] for r in rs]):.1%}" if "eval_share" in rs[0] else "-"
        print(f"| {row} | {med([r['heldout'] for r in rs]):.3f} | {med([r['steps'] for r in rs]):.0f} | "
              f"{med([r['real_tps'] for r in rs]):.0f} | {med([r['computed_tps'] for r in rs]):.0f} | {frac} | {to} | {share} |")
    if ceilings:
        print(f"\nceiling: bare forward+backward+AdamW on chatft's batch shape, median "
              + ", ".join(f"{n} {med([c[n] for c in ceilings if n in c]):.0f} tok/s" for n in ceilings[0]))
    if wide and ceil:
        best = max(ceil, max(wide.values()))
        print(f"ceiling at 1x1024 tokens (TRL's default length): " + ", ".join(f"{n} {v:.0f} tok/s" for n, v in wide.items())
              + f"; chatft's loop is {med([r['computed_tps'] for r in runs if r['row'] == 'chatft'] or [0])/best:.2f} of the best ceiling measured")
    ch = [r for r in runs if r["row"] == "chatft"]
    if ch: print(f"chatft's plan: {ch[-1]['plan']}")

if __name__ == "__main__": main()
