"""Generation for held-out prompts with the demo model on this CPU: chatft's batched, left-padded, length-sorted
generation (`chatft.evaluate.generate_replies`) vs one prompt at a time with plain `model.generate`.

Each way runs in its own process, so its peak memory (max RSS) is its own. Both are greedy, stop at the template's
end-of-turn token and write at most --max-new-tokens tokens.

    python benchmarks/bench_eval.py                      # 64 prompts, 64 new tokens, batches of 16
    python benchmarks/bench_eval.py --n 16 --max-new-tokens 32
"""
import argparse, json, resource, subprocess, sys, time
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


def run(mode:str, n:int, max_new_tokens:int, batch_size:int)->dict:
    "Generate in `mode` ('batched' or 'single'); the time, tokens and peak memory of this process."
    import torch
    from tqdm.auto import tqdm
    from chatft.models import load_model, load_tokenizer, DEMO_MODEL
    from chatft.evaluate import generate_replies, _eot_id, _reply
    tok, model = load_tokenizer(DEMO_MODEL), load_model(DEMO_MODEL).eval()
    ps = prompts(n)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    if mode == "batched": out = generate_replies(model, tok, ps, max_new_tokens, batch_size=batch_size, desc="batched")
    else:
        eot = _eot_id(tok); out = []
        for p in tqdm(ps, desc="one at a time"):
            with torch.no_grad():
                g = model.generate(input_ids=torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long),
                                   max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=eot, pad_token_id=eot,
                                   top_p=None, top_k=None, temperature=None)
            out.append(_reply(g[0, len(p):].tolist(), tok, eot, {eot}))
    secs = time.perf_counter() - t0
    return dict(mode=mode, prompts=len(ps), seconds=secs, tokens=sum(o["tokens"] + o["stopped"] for o in out),
                stop_rate=sum(o["stopped"] for o in out)/len(out), texts=[o["text"] for o in out],
                peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024, rss_before_mb=rss0/1024)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=64); p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16); p.add_argument("--child", default=None)
    a = p.parse_args()
    if a.child:
        print("RESULT " + json.dumps(run(a.child, a.n, a.max_new_tokens, a.batch_size))); return
    res = {}
    for mode in ("batched", "single"):
        cmd = [sys.executable, __file__, "--child", mode, "--n", str(a.n), "--max-new-tokens", str(a.max_new_tokens),
               "--batch-size", str(a.batch_size)]
        out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True).stdout
        res[mode] = json.loads(next(l for l in out.splitlines() if l.startswith("RESULT "))[7:])
    b, s = res["batched"], res["single"]
    same = sum(x[:30] == y[:30] for x, y in zip(b["texts"], s["texts"]))
    print(f"\n{a.n} held-out prompts, demo model, greedy, <= {a.max_new_tokens} new tokens, batches of {a.batch_size}\n")
    print(f"  {'':28}{'batched (chatft)':>18}{'one at a time':>16}")
    print(f"  {'seconds':28}{b['seconds']:>18.1f}{s['seconds']:>16.1f}")
    print(f"  {'generated tokens/s':28}{b['tokens']/b['seconds']:>18.1f}{s['tokens']/s['seconds']:>16.1f}")
    print(f"  {'prompts/s':28}{b['prompts']/b['seconds']:>18.2f}{s['prompts']/s['seconds']:>16.2f}")
    print(f"  {'stop rate':28}{b['stop_rate']:>18.2f}{s['stop_rate']:>16.2f}")
    print(f"  {'peak RSS, MB':28}{b['peak_rss_mb']:>18.0f}{s['peak_rss_mb']:>16.0f}")
    print(f"\n  throughput ratio (prompts/s, batched / one at a time): {s['seconds']/b['seconds']:.2f}x   (goal >= 3x)")
    print(f"  replies whose first 30 characters agree: {same} of {len(b['texts'])}")


if __name__ == "__main__": main()
