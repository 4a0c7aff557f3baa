"""Batching in `chatft serve`: N concurrent clients (the official `openai` client, greedy, streamed off) against
the server generating requests together (`--max-batch 8`) and the same server generating one at a time
(`--max-batch 1`). Aggregate completion tokens/s, p50/p95 request latency, failures, side by side.

    python benchmarks/bench_serve.py [--run RUN_OR_MODEL] [--clients 8] [--requests 2] [--tokens 64] [--threads 1]

The servers run one after the other (never at once) on this machine; the load average is printed with the
numbers, since other work on the machine slows both. The issue's goal is a ratio >= 3x."""
import argparse, os, signal, statistics, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import httpx, numpy as np, openai
from chatft.models import DEMO_MODEL
from chatft.serve import free_port

PROMPTS = ["Write a long story about a boiler that would not stop making noise.",
           "Explain how a bicycle works, step by step, in detail.",
           "List twenty things to pack for a week of camping, with a reason for each.",
           "Describe your ideal weekend from morning to night.",
           "Write a letter to a neighbour about a tree that blocks the light.",
           "Explain photosynthesis to a ten-year-old, with examples.",
           "Give a recipe for vegetable soup with every step explained.",
           "Tell the history of the printing press in a few paragraphs."]

def start(run:str, max_batch:int, threads:int):
    "A `chatft serve` process and its base URL, once /health answers."
    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).parent/"chatft"), "serve", run, "--port", str(port),
                             "--max-batch", str(max_batch), "--threads", str(threads)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(url+"/health", timeout=1).status_code == 200: return proc, url
        except httpx.HTTPError: time.sleep(0.3)
        if proc.poll() is not None: sys.exit(f"the server did not start: {proc.stderr.read().decode()[-2000:]}")

def client_run(url:str, i:int, requests:int, tokens:int)->list:
    "(seconds, completion tokens, failed) for each request of client `i`."
    c = openai.OpenAI(base_url=url+"/v1", api_key="none", max_retries=0, timeout=900)
    out = []
    for j in range(requests):
        t = time.perf_counter()
        try:
            r = c.chat.completions.create(model="m", max_tokens=tokens, temperature=0,
                                          messages=[dict(role="user", content=PROMPTS[(i + j) % len(PROMPTS)])])
            out.append((time.perf_counter() - t, r.usage.completion_tokens, False))
        except Exception: out.append((time.perf_counter() - t, 0, True))
    return out

def measure(run:str, max_batch:int, clients:int, requests:int, tokens:int, threads:int)->dict:
    proc, url = start(run, max_batch, threads)
    try:
        client_run(url, 0, 1, 8)                                   # warm up
        before = httpx.get(url+"/health").json()
        t = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            rows = [r for rs in pool.map(lambda i: client_run(url, i, requests, tokens), range(clients)) for r in rs]
        wall = time.perf_counter() - t
        after = httpx.get(url+"/health").json()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    lat = sorted(s for s, _, f in rows if not f)
    steps = max(after["steps"] - before["steps"], 1)
    return dict(tokens=sum(n for _, n, _ in rows), wall=wall, failures=sum(f for *_, f in rows),
                p50=statistics.median(lat), p95=float(np.percentile(lat, 95, method="nearest")),   # a latency that was seen
                batch=(after["rows"] - before["rows"]) / steps, exit=proc.returncode)

def main():
    a = argparse.ArgumentParser()
    a.add_argument("--run", default=DEMO_MODEL, help="a run folder or model (default: the demo model)")
    a.add_argument("--clients", type=int, default=8)
    a.add_argument("--requests", type=int, default=2, help="requests per client, one after the other")
    a.add_argument("--tokens", type=int, default=64, help="max_tokens of each request")
    a.add_argument("--batch", type=int, default=8, help="--max-batch of the batching server")
    a.add_argument("--threads", type=int, default=1, help="torch threads of both servers (1: steadier on a busy machine)")
    a = a.parse_args()
    load = os.getloadavg()
    res = {f"--max-batch {b}": measure(a.run, b, a.clients, a.requests, a.tokens, a.threads) for b in (a.batch, 1)}
    print(f"{a.run} on CPU ({os.cpu_count()} cores), {a.clients} clients x {a.requests} requests, "
          f"max_tokens {a.tokens}, greedy, {a.threads} torch thread(s); load average before {load[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    print(f"  {'':16}{'tokens/s':>10}{'tokens':>8}{'wall s':>8}{'p50 s':>8}{'p95 s':>8}{'failures':>9}{'mean batch':>11}{'exit':>5}")
    for k, r in res.items():
        print(f"  {k:16}{r['tokens']/r['wall']:10.1f}{r['tokens']:8d}{r['wall']:8.1f}{r['p50']:8.2f}{r['p95']:8.2f}"
              f"{r['failures']:9d}{r['batch']:11.2f}{r['exit']:5d}")
    b, s = res.values()
    print(f"  batching / one at a time: {(b['tokens']/b['wall']) / (s['tokens']/s['wall']):.2f}x tokens/s "
          f"(goal >= 3x); p50 latency {s['p50']/b['p50']:.2f}x lower")

if __name__ == "__main__": main()
