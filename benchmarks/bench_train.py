"""Train the demo model on this CPU for the same wall time three ways and compare, side by side:

- guide: the recipe this project grew from: every example padded to 2048 tokens, pad = eos, plain LM labels
  (DataCollatorForLanguageModeling, so every token of the template, the user turns and, with pad = eos, no
  end-of-turn is learned), fixed only to run on transformers 5 (`eval_strategy`, `processing_class`);
- trl: TRL's SFTTrainer with its defaults on the conversations (`messages`), LoRA as in the others;
- chatft: `chatft.dataset.prepare` (assistant-only labels) + `pack` + `PackedCollator`, `chatft.train.train`.

All use LoRA r=16 on all linear layers, lr 1e-3, the same train conversations, and are scored with the same
function on the same held-out conversations: the loss per assistant token (what a chat model is for).
Each method runs in its own process, so peak memory (max RSS) is its own.

    python benchmarks/bench_train.py --seconds 90
"""
import argparse, json, os, resource, subprocess, sys, time, tempfile
from pathlib import Path

def data():
    from chatft.models import DEMO_MODEL, load_tokenizer
    from chatft.synth import synthetic_conversations
    from chatft.dataset import prepare
    tok = load_tokenizer(DEMO_MODEL)
    convs = synthetic_conversations(60, seed=0)
    dsd, _ = prepare(convs, tok, max_length=512)
    train_ids = set(dsd["train"]["id"])
    return tok, convs, dsd, [c for c in convs if c.id in train_ids]

def lora():
    from peft import LoraConfig
    return LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")

def score(model, tok, dsd):
    from chatft.train import heldout_loss
    from chatft.dataset import PackedCollator, pack
    return heldout_loss(model, pack(dsd["test"], 512), PackedCollator(tok.pad_token_id))

class Count:
    "A TrainerCallback-free counter wrapped around a collator: real and trained tokens fed to the model."
    def __init__(self, collate): self.collate, self.real, self.trained, self.computed = collate, 0, 0, 0
    def __call__(self, rows):
        b = self.collate(rows)
        self.computed += b["input_ids"].numel(); self.trained += int((b["labels"] != -100).sum())
        am = b.get("attention_mask")
        self.real += int(am.sum()) if am is not None and am.dim() == 2 else int((b["labels"] != -100).numel() if am is None else b["input_ids"].numel())
        return b

def run(method, seconds):
    import torch
    from transformers import Trainer, TrainingArguments, DataCollatorForLanguageModeling
    from peft import get_peft_model
    from chatft.models import DEMO_MODEL, load_model, model_path
    from chatft.train import TimeBudget, plan_training, pack_splits, collator_for, load_for_training, training_args
    torch.manual_seed(0)
    tok, convs, dsd, train_convs = data()
    out = tempfile.mkdtemp()
    common = dict(output_dir=out, learning_rate=1e-3, max_steps=10**6, report_to=[], save_strategy="no", use_cpu=True,
                  logging_steps=1, per_device_train_batch_size=1, disable_tqdm=True)
    if method == "guide":
        from datasets import Dataset
        tok.pad_token = tok.eos_token
        texts = [tok.apply_chat_template(c.messages, tokenize=False) for c in train_convs]
        ds = Dataset.from_dict({"text": texts}).map(lambda b: tok(b["text"], padding="max_length", truncation=True, max_length=2048), batched=True, remove_columns=["text"])
        model = get_peft_model(load_model(DEMO_MODEL), lora())
        coll = Count(DataCollatorForLanguageModeling(tok, mlm=False))
        trainer = Trainer(model=model, args=TrainingArguments(eval_strategy="no", **common), train_dataset=ds, data_collator=coll, processing_class=tok)
    elif method == "trl":
        from trl import SFTTrainer, SFTConfig
        from datasets import Dataset
        ds = Dataset.from_dict({"messages": [c.messages for c in train_convs]})
        trainer = SFTTrainer(model=str(model_path(DEMO_MODEL)), args=SFTConfig(**common), train_dataset=ds, processing_class=tok, peft_config=lora())
        coll = Count(trainer.data_collator); trainer.data_collator = coll
        trainer.callback_handler.train_dataloader = None
    else:
        plan = plan_training(DEMO_MODEL, dsd, lr=1e-3, lora_dropout=0.0, grad_accum=1, lr_scheduler="constant", warmup_ratio=0.0, max_steps=10**6, max_length=512)
        model = load_for_training(plan, verbose=False)
        data_ = pack_splits(dsd, plan)
        coll = Count(collator_for(plan, tok))
        trainer = Trainer(model=model, args=training_args(plan, out, eval=False, save_strategy="no", logging_steps=1, disable_tqdm=True, lr_scheduler_type="constant"),
                          train_dataset=data_["train"], data_collator=coll, processing_class=tok)
    if method != "chatft": trainer.args.lr_scheduler_type = "constant"
    trainer.add_callback(TimeBudget(seconds/60))
    t = time.time(); trainer.train(); dt = time.time() - t
    loss = score(trainer.model, tok, dsd)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024
    print(json.dumps(dict(method=method, steps=trainer.state.global_step, seconds=round(dt, 1), computed_tps=coll.computed/dt,
                          trained_tps=coll.trained/dt, peak_mb=peak, heldout=loss)))

def main():
    p = argparse.ArgumentParser(); p.add_argument("--seconds", type=float, default=90); p.add_argument("--method")
    a = p.parse_args()
    if a.method: return run(a.method, a.seconds)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "TQDM_DISABLE": "1"}
    rows = []
    for m in ["guide", "trl", "chatft"]:
        r = subprocess.run([sys.executable, __file__, "--method", m, "--seconds", str(a.seconds)], capture_output=True, text=True, env=env)
        line = [l for l in r.stdout.splitlines() if l.startswith("{")]
        if not line: print(f"{m} failed:\n{r.stderr[-3000:]}"); continue
        rows.append(json.loads(line[-1])); print(line[-1], flush=True)
    base = next((r for r in rows if r["method"] == "chatft"), None)
    print(f"\nSame data (54 train / 6 held-out synthetic conversations), SmolLM2-135M-Instruct + LoRA r=16, {a.seconds:g} s of training on this CPU each\n")
    print(f"{'method':<8} {'steps':>5} {'computed tok/s':>14} {'trained tok/s':>13} {'peak MB':>8} {'held-out loss':>13}   vs chatft (trained tok/s, held-out)")
    for r in rows:
        ratio = f"x{r['trained_tps']/base['trained_tps']:.2f}, {r['heldout']-base['heldout']:+.3f}" if base else ""
        print(f"{r['method']:<8} {r['steps']:>5} {r['computed_tps']:>14.0f} {r['trained_tps']:>13.1f} {r['peak_mb']:>8.0f} {r['heldout']:>13.3f}   {ratio}")

if __name__ == "__main__": main()
