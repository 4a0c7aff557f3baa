"""Generation for held-out prompts with the demo model on this CPU: chatft's batched, left-padded, length-sorted
generation (`chatft.evaluate.generate_replies`) vs one prompt at a time with plain `model.generate`.

Both ways run in one process, interleaved batch by batch (a batch of prompts generated together, then the same
prompts one at a time), so other work on a shared machine slows both alike. Peak memory (max RSS) is measured apart:
each way generates in its own process (one batch; one at a time, two prompts). Both are greedy, stop at the template's end-of-turn token and write
at most --max-new-tokens tokens.

    python benchmarks/bench_eval.py                      # 64 prompts, 64 new tokens, batches of 16
    python benchmarks/bench_eval.py --n 16 --max-new-tokens 32
    python benchmarks/bench_eval.py --threads 1            # on a machine busy with other work
"""
import argparse, json, os, resource, subprocess, sys, time
from pathlib import Path


def prompts(n:int)->list:
    "Token ids of `n` held-out prompts: synthetic conversations prepared for the demo model, time split."
    from chatft.synth import synthetic_conversations
    from chatft.dataset import prepare
    from chatft.models import load_tokenizer, DEMO_MODEL
    from chatft.evaluate import heldout_examples
    tok = load_tokenizer(DEMO_MODEL)
    dsd, _ = prepare(synthetic_conversations(200, seed=1), tok, max_length=512, test_size=0.4)
    ex = heldout_examples(dsd["test"], tok, n=n)
    if len(ex) < n: ex += heldout_examples(dsd["train"], tok, n=n-len(ex))
    return [e["prompt_ids"] for e in ex]


def _load():
    import os, torch
    if os.environ.get("BENCH_THREADS"): torch.set_num_threads(int(os.environ["BENCH_THREADS"]))
    from chatft.models import load_model, load_tokenizer, DEMO_MODEL
    return load_tokenizer(DEMO_MODEL), load_model(DEMO_MODEL).eval()


def _single(model, tok, ps, max_new_tokens)->list:
    "One prompt at a time with plain `model.generate`, greedy, stopping at the end-of-turn token."
    import torch
    from chatft.evaluate import _eot_id, _reply
    eot, out = _eot_id(tok), []
    for p in ps:
        with torch.no_grad():
            g = model.generate(input_ids=torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long),
                               max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=eot, pad_token_id=eot,
                               top_p=None, top_k=None, temperature=None)
        out.append(_reply(g[0, len(p):].tolist(), tok, eot, {eot}))
    return out


def _batched(model, tok, ps, max_new_tokens, batch_size)->list:
    from chatft.evaluate import generate_replies
    return generate_replies(model, tok, ps, max_new_tokens, batch_size=batch_size, desc="batched")


def timed(n:int, max_new_tokens:int, batch_size:int)->dict:
    """Both ways in one process, interleaved chunk by chunk (a chunk = one batch of prompts, run batched, then the
    same prompts one at a time), so a machine shared with other work slows both alike."""
    from tqdm.auto import tqdm
    tok, model = _load()
    ps = prompts(n)
    res = {m: dict(mode=m, prompts=len(ps), seconds=0.0, out=[]) for m in ("batched", "single")}
    for k in tqdm(range(0, len(ps), batch_size), desc="chunks (batched, then one at a time)"):
        chunk = ps[k:k+batch_size]
        for m in ("batched", "single"):
            t0 = time.perf_counter()
            o = _batched(model, tok, chunk, max_new_tokens, batch_size) if m == "batched" else _single(model, tok, chunk, max_new_tokens)
            res[m]["seconds"] += time.perf_counter() - t0
            res[m]["out"] += o
    for r in res.values():
        out = r.pop("out")
        r.update(tokens=sum(o["tokens"] + o["stopped"] for o in out), stop_rate=sum(o["stopped"] for o in out)/len(out),
                 texts=[o["text"] for o in out])
    return res


def memory(mode:str, max_new_tokens:int, batch_size:int)->dict:
    """Peak RSS of a process that generates in `mode` (its own process, so its own peak): one batch of prompts, or
    for 'single' two prompts (one at a time holds one prompt's cache, however many follow)."""
    tok, model = _load()
    ps = prompts(batch_size) if mode == "batched" else prompts(2)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if mode == "batched": _batched(model, tok, ps, max_new_tokens, batch_size)
    else: _single(model, tok, ps, max_new_tokens)
    return dict(peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024, rss_before_mb=rss0/1024)


def _child(args:list)->dict:
    out = subprocess.run([sys.executable, __file__] + args, stdout=subprocess.PIPE, text=True, check=True).stdout
    return json.loads(next(l for l in out.splitlines() if l.startswith("RESULT "))[7:])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=64); p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16); p.add_argument("--child", default=None)
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads for both ways (default: torch's own; 1 keeps a busy machine's other work from "
                        "stalling torch's thread pool, which hurts batches more than single prompts)")
    a = p.parse_args()
    if a.threads: os.environ["BENCH_THREADS"] = str(a.threads)
    if a.child == "timed": print("RESULT " + json.dumps(timed(a.n, a.max_new_tokens, a.batch_size))); return
    if a.child: print("RESULT " + json.dumps(memory(a.child, a.max_new_tokens, a.batch_size))); return
    common = ["--n", str(a.n), "--max-new-tokens", str(a.max_new_tokens), "--batch-size", str(a.batch_size)]
    res = _child(["--child", "timed"] + common)
    for mode in ("batched", "single"): res[mode].update(_child(["--child", mode] + common))
    b, s = res["batched"], res["single"]
    same = sum(x[:30] == y[:30] for x, y in zip(b["texts"], s["texts"]))
    import torch
    threads = a.threads or torch.get_num_threads()
    print(f"\n{a.n} held-out prompts, demo model, greedy, <= {a.max_new_tokens} new tokens, batches of {a.batch_size}, "
          f"{threads} torch thread(s), load average {os.getloadavg()[0]:.1f}\n")
    print(f"  {'':28}{'batched (chatft)':>18}{'one at a time':>16}")
    print(f"  {'seconds':28}{b['seconds']:>18.1f}{s['seconds']:>16.1f}")
    print(f"  {'generated tokens/s':28}{b['tokens']/b['seconds']:>18.1f}{s['tokens']/s['seconds']:>16.1f}")
    print(f"  {'prompts/s':28}{b['prompts']/b['seconds']:>18.2f}{s['prompts']/s['seconds']:>16.2f}")
    print(f"  {'stop rate':28}{b['stop_rate']:>18.2f}{s['stop_rate']:>16.2f}")
    print(f"  {'peak RSS, MB':28}{b['peak_rss_mb']:>18.0f}{s['peak_rss_mb']:>16.0f}")
    print(f"\n  throughput ratio (prompts/s, batched / one at a time): {s['seconds']/b['seconds']:.2f}x   (goal >= 3x)")
    print(f"  replies whose first 30 characters agree: {same} of {len(b['texts'])}")


if __name__ == "__main__": main()
