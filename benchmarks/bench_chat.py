"""Streaming cost of `chatft.chat`: time to first token and tokens/s of `Chat.reply(stream=True)` with the demo model
on this CPU, against plain `model.generate` on the same prompt with the same settings (greedy, same tokens).

    OMP_NUM_THREADS=2 python benchmarks/bench_chat.py [--tokens 128] [--repeats 3] [--run RUN_FOLDER]

The issue asks that streaming cost less than 10% throughput."""
import argparse, statistics, time
import torch
from chatft.models import DEMO_MODEL
from chatft.chat import load_chat

def plain(chat, msgs, n):
    "Seconds and generated tokens of one plain `model.generate` call."
    ids = torch.tensor([chat.prompt(msgs, n)])
    cfg = chat._generation(n, 0.0, 1.0, 50, 1.0, ())
    t = time.perf_counter()
    with torch.no_grad(): out = chat.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=cfg)
    return time.perf_counter() - t, out.shape[1] - ids.shape[1]

def streamed(chat, msgs, n):
    "Seconds to the first piece, total seconds and text of one streamed reply."
    t = time.perf_counter(); first, text = None, ""
    for piece in chat.reply(msgs, stream=True, max_new_tokens=n):
        if first is None: first = time.perf_counter() - t
        text += piece
    return first, time.perf_counter() - t, text

def main():
    a = argparse.ArgumentParser()
    a.add_argument("--tokens", type=int, default=128); a.add_argument("--repeats", type=int, default=3)
    a.add_argument("--run", default=DEMO_MODEL, help="a run folder or model (default: the demo model)")
    a = a.parse_args()
    chat = load_chat(a.run, device="cpu")
    msgs = [dict(role="user", content="Write a long story about a boiler that would not stop making noise.")]
    plain(chat, msgs, 8); streamed(chat, msgs, 8)                  # warm up
    rows = []
    for _ in range(a.repeats):                                       # interleaved, so machine load hits both alike
        p_s, n = plain(chat, msgs, a.tokens)
        first, s_s, text = streamed(chat, msgs, a.tokens)
        assert text == chat.reply(msgs, max_new_tokens=a.tokens)
        rows.append((p_s, first, s_s, n))
    p_s, first, s_s = (statistics.median(r[i] for r in rows) for i in range(3))
    n = rows[0][3]
    print(f"{a.run} on CPU ({torch.get_num_threads()} threads), {n} new tokens, median of {a.repeats}")
    print(f"  plain model.generate : {n/p_s:6.1f} tokens/s  ({p_s:.2f} s)")
    print(f"  Chat.reply(stream)   : {n/s_s:6.1f} tokens/s  ({s_s:.2f} s), first token after {first*1000:.0f} ms")
    print(f"  streamed/plain throughput: {p_s/s_s:.3f}  (streaming costs {100*(s_s/p_s-1):+.1f}%; target < 10%)")

if __name__ == "__main__": main()
