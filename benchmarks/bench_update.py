"""`chatft update` against retraining from scratch on old + new (issue 25), and the replay share that sets its default.

    python benchmarks/bench_update.py [--n 120] [--new 40] [--epochs 2] [--replays 0 0.25 0.5 1] [--model MODEL] [--seed N] [--out JSON]

The synthetic export of `--n` conversations and its synthetic next month (`chatft.synth.synthetic_next_month`: `--new`
new conversations, some grown, changed and deleted). A parent run is trained on the first (read, cleaned, prepared
and trained as `chatft train` does); then, on the same model with the same settings (`--epochs`, `--max-length`,
LoRA shape, learning rate):
- `update` from the parent, once for each replay share in `--replays`;
- a retrain from scratch on every conversation of the later export that the update's held-out sets do not hold.
Both are scored on the same held-out rows: the new held-out (the most recent new conversations) and the parent's
held-out (never trained by the update; the retrain leaves them out too). Reported: wall time of each (data, plan and
training), its training time (the Trainer's), both losses, and the rise of the parent's held-out loss over the
parent's own. Results in benchmarks/results/bench_update.json."""
import argparse, json, os, tempfile, time
from pathlib import Path
from chatft.models import DEMO_MODEL, load_tokenizer
from chatft.core import Run, quiet
from chatft.synth import synthetic_export, synthetic_next_month
from chatft.clean import read_cleaned
from chatft.dataset import prepare, tokenize_conversations
from chatft.train import plan_training, train, split_loss, TrainPlan, load_run
from chatft.update import plan_update, update, update_data, _prepare_notes, _system_arg

RESULTS = Path(__file__).parent/"results"

def train_seconds(run:Path)->float:
    return next(h for h in reversed(json.loads((Path(run)/Run.LOG).read_text())) if "train_runtime" in h)["train_runtime"]

def steps(run:Path)->int: return max(h.get("step", 0) for h in json.loads((Path(run)/Run.LOG).read_text()))

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=120)
    p.add_argument("--new", type=int, default=40)
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--replays", type=float, nargs="+", default=[0, 0.25, 0.5, 1.0])
    p.add_argument("--model", default=DEMO_MODEL)
    p.add_argument("--seed", type=int, default=0, help="the synthetic person and their next month (training's seed stays 0)")
    p.add_argument("--out", default=str(RESULTS/"bench_update.json"), help="where the results go (JSON)")
    a = p.parse_args()
    quiet()
    d = Path(tempfile.mkdtemp(prefix="bench-update-"))
    first = synthetic_export(d/"first", n=a.n, seed=a.seed)
    later, truth = synthetic_next_month(d/"later", n=a.n, seed=a.seed, new=a.new, grown=a.n//10, changed=a.n//40,
                                        deleted=a.n//40)
    tok = load_tokenizer(a.model)
    settings = dict(epochs=a.epochs, max_length=a.max_length)
    # the parent run, as `chatft train` on the first export makes it
    t = time.time()
    convs, reports = read_cleaned(first, tok)
    dsd, rep = prepare(convs, tok, max_length=a.max_length)
    plan = plan_training(a.model, dsd, **settings)
    train(plan, dsd, d/"parent", tokenizer=tok, report=[*reports, rep], live=False)
    parent = dict(seconds=round(time.time() - t, 1), train_seconds=round(train_seconds(d/"parent"), 1),
                  steps=steps(d/"parent"), examples=len(dsd["train"]))
    up = plan_update(d/"parent", later, progress=False)
    print(up)
    _, parts, _ = update_data(up, load_tokenizer(str(d/"parent")), a.max_length, 0.0)
    model, ptok, pplan = load_run(d/"parent")
    parent |= {k: split_loss(model, {k: ds}, pplan, ptok, k) for k, ds in parts.items()}
    del model
    rows = [dict(method="parent (first export)", **parent)]
    print(rows[-1], flush=True)
    for r in a.replays:
        t = time.time()
        res = update(d/"parent", later, d/f"update-{r}", replay=r, up=up, epochs=a.epochs, live=False)
        rows.append(dict(method="update", replay=r, seconds=round(time.time() - t, 1),
                         train_seconds=round(train_seconds(d/f"update-{r}"), 1),
                         steps=steps(d/f"update-{r}"), **res["loss_after"],
                         old_rise=res["old_heldout_change"], before=res["loss_before"]))
        print(rows[-1], flush=True)
    # retrain from scratch on the later export, leaving out the update's held-out conversations (old and new)
    t = time.time()
    held = set(up.old_test) | {c.id for c in up.test} | set(up.left_out)
    notes = _prepare_notes(Run(d/"parent"))
    kw = dict(tokenizer=tok, max_length=a.max_length, system=_system_arg(notes), train_on=notes.get("train_on", "assistant"))
    from datasets import DatasetDict, concatenate_datasets
    rtrain = tokenize_conversations([c for c in up.convs if c.id not in held], **kw)
    rdsd = DatasetDict(train=rtrain.cast(parts["old"].features),
                       test=concatenate_datasets([ds for ds in parts.values() if len(ds)]))
    rplan = plan_training(a.model, rdsd, **settings, lr=plan.lr)
    tr = train(rplan, rdsd, d/"retrain", tokenizer=tok, report=[rep], live=False)
    seconds = time.time() - t
    rows.append(dict(method="retrain (old + new)", seconds=round(seconds, 1), train_seconds=round(train_seconds(d/"retrain"), 1),
                     steps=steps(d/"retrain"), **{k: split_loss(tr.model, {k: ds}, rplan, tok, k) for k, ds in parts.items()}))
    print(rows[-1], flush=True)
    retrain = rows[-1]
    print(f"\n{up}\n")
    print("| method | replay | wall s | train s | steps | new held-out loss | vs retrain | old held-out loss | vs parent |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        vs_r = (row["new"] - retrain["new"]) / retrain["new"]
        vs_p = (row["old"] - parent["old"]) / parent["old"]
        print(f"| {row['method']} | {row.get('replay', '')} | {row['seconds']} | {row['train_seconds']} | {row['steps']} | "
              f"{row['new']:.4f} | {vs_r:+.1%} | {row['old']:.4f} | {vs_p:+.1%} |")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(dict(args=vars(a), counts=up.counts(), rows=rows), indent=2))

if __name__ == "__main__": main()
