"""Batching in `chatft serve`: N concurrent clients (the official `openai` client, greedy, streamed off) against
the server generating requests together (`--max-batch 8`) and the same server generating one at a time
(`--max-batch 1`). Aggregate completion tokens/s, p50/p95 request latency, failures, side by side.

    python benchmarks/bench_serve.py [--run RUN_OR_MODEL] [--clients 8] [--requests 2] [--tokens 64] [--threads 1]

The servers run one after the other (never at once) on this machine; the load average is printed with the
numbers, since other work on the machine slows both. The issue's goal is a ratio >= 3x.

    python benchmarks/bench_serve.py --soak [--clients 64] [--minutes 5] [--max-waiting 64]

The soak: CLIENTS clients against one server (`--max-batch 8`, `--max-waiting`) for MINUTES minutes, each sending
one request after another of a mix: 8, 32 or 128 new tokens, half streamed; one request in 8 is a streamed one whose
client leaves after two chunks, one in 8 a malformed body (bad JSON, deep nesting, wrong types), which must get a 4xx.
A 429 is counted, and its client waits `Retry-After` seconds before going on. Reported: requests served, left,
malformed (answered 4xx), refused (429), failures (anything else: must be 0), p50/p95 latency of the served ones,
the server's RSS after the first fifth of the time (warm-up) and its peak after that (must stay flat)."""
import argparse, os, random, signal, statistics, subprocess, sys, threading, time
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

def start(run:str, max_batch:int, threads:int, *more):
    "A `chatft serve` process and its base URL, once /health answers."
    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).parent/"chatft"), "serve", run, "--port", str(port),
                             "--max-batch", str(max_batch), "--threads", str(threads), *more],
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

BAD_BODIES = [b"{not json", b"[" * 50_000 + b"]" * 50_000, b'{"messages": 7}', b'{"messages": [{"role": 1}]}',
              b'{"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}', b"\xff\xfe", b"null"]

def rss_mb(pid:int)->float:
    "The resident memory of process `pid`, in MB."
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"): return int(line.split()[1]) / 1024
    return 0.0

def soak_client(url:str, i:int, deadline:float, out:dict, lock):
    "One client's mix of requests until `deadline`; its counts and latencies go into `out`."
    import httpx
    c, rng = openai.OpenAI(base_url=url+"/v1", api_key="none", max_retries=0, timeout=600), random.Random(i)
    def count(k, v=1):
        with lock: out[k] = out.get(k, 0) + v
    j = 0
    while time.time() < deadline:
        j += 1
        kind = "malformed" if j % 8 == 3 else "leave" if j % 8 == 6 else "stream" if rng.random() < 0.5 else "plain"
        msgs = [dict(role="user", content=PROMPTS[(i + j) % len(PROMPTS)])]
        t = time.perf_counter()
        try:
            if kind == "malformed":
                r = httpx.post(url+"/v1/chat/completions", content=BAD_BODIES[(i + j) % len(BAD_BODIES)], timeout=60)
                count("malformed" if 400 <= r.status_code < 500 and r.status_code != 429 else
                      "refused" if r.status_code == 429 else "failures")
                continue
            tokens = rng.choice([8, 32, 128])
            if kind == "plain": c.chat.completions.create(model="m", messages=msgs, max_tokens=tokens, temperature=0)
            else:
                stream = c.chat.completions.create(model="m", messages=msgs, max_tokens=tokens, stream=True)
                for k, _ in enumerate(stream):
                    if kind == "leave" and k == 2: break
                stream.close()
            count("left" if kind == "leave" else "served")
            if kind != "leave":
                with lock: out.setdefault("latency", []).append(time.perf_counter() - t)
        except openai.RateLimitError as e:
            count("refused")
            time.sleep(float(e.response.headers.get("retry-after", 1)))
        except Exception as e:
            count("failures")
            with lock: out.setdefault("errors", []).append(f"{type(e).__name__}: {e}"[:200])

def soak(run:str, clients:int, minutes:float, max_waiting:int, threads:int):
    proc, url = start(run, 8, threads, "--max-waiting", str(max_waiting))
    out, lock, rss, stop = {}, threading.Lock(), [], threading.Event()
    def sample():
        while not stop.is_set(): rss.append((time.time(), rss_mb(proc.pid))); time.sleep(1)
    threading.Thread(target=sample, daemon=True).start()
    t0 = time.time()
    deadline = t0 + minutes * 60
    try:
        with ThreadPoolExecutor(clients) as pool:
            for f in [pool.submit(soak_client, url, i, deadline, out, lock) for i in range(clients)]: f.result()
        health = httpx.get(url+"/health", timeout=5).json()
    finally:
        stop.set()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    warm = [m for t, m in rss if t >= t0 + minutes * 12]
    lat = sorted(out.get("latency", [0]))
    print(f"soak: {run} on CPU ({os.cpu_count()} cores), {clients} clients for {minutes} min, --max-batch 8 "
          f"--max-waiting {max_waiting}, {threads} torch thread(s); load average after {os.getloadavg()[0]:.2f}")
    print(f"  served {out.get('served', 0)}, left mid-stream {out.get('left', 0)}, malformed (4xx) "
          f"{out.get('malformed', 0)}, refused (429) {out.get('refused', 0)}, failures {out.get('failures', 0)}")
    print(f"  latency of the served: p50 {statistics.median(lat):.1f} s, p95 "
          f"{float(np.percentile(lat, 95, method='nearest')):.1f} s; server /health at the end: running "
          f"{health['running']}, waiting {health['waiting']}, cancelled {health['cancelled']}, refused {health['refused']}")
    print(f"  server RSS: {warm[0] if warm else 0:.0f} MB after warm-up, peak after it {max(warm or [0]):.0f} MB, "
          f"at the end {rss[-1][1] if rss else 0:.0f} MB; exit code {proc.returncode}")
    for e in sorted(set(out.get("errors", [])))[:5]: print("  failure:", e)

def main():
    a = argparse.ArgumentParser()
    a.add_argument("--run", default=DEMO_MODEL, help="a run folder or model (default: the demo model)")
    a.add_argument("--clients", type=int, default=None, help="concurrent clients (default: 8; the soak: 64)")
    a.add_argument("--requests", type=int, default=2, help="requests per client, one after the other")
    a.add_argument("--tokens", type=int, default=64, help="max_tokens of each request")
    a.add_argument("--batch", type=int, default=8, help="--max-batch of the batching server")
    a.add_argument("--threads", type=int, default=1, help="torch threads of both servers (1: steadier on a busy machine)")
    a.add_argument("--soak", action="store_true", help="the soak instead: many clients, a mix of requests, for minutes")
    a.add_argument("--minutes", type=float, default=5, help="the soak's length")
    a.add_argument("--max-waiting", type=int, default=64, help="the soak server's --max-waiting")
    a = a.parse_args()
    if a.soak: return soak(a.run, a.clients or 64, a.minutes, a.max_waiting, a.threads)
    a.clients = a.clients or 8
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
