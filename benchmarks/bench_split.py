"""Which rule decides that a held-out reply was seen in training: word for word, a shared 13-word n-gram (GPT-3's
decontamination), or a shared stretch of 50 characters (GPT-4's)? Measured on real conversations and on planted leaks.

1. Real data: every sample under `../shared/samples/` that holds 20 or more conversations (the ShareGPT sample, the
   OpenAI fine-tuning toy set), cleaned with chatft's defaults, then split at random (10% held out, 20 seeds) without
   chatft's check: how many held-out conversations each rule flags, how many only the 50-character rule flags, and
   examples of those (to see whether they are real repeats or chance).
2. Planted leaks: a training reply copied into a held-out conversation, with a fraction of its words replaced (a
   regenerated or edited answer): the share of copies each rule catches, by edit rate.
3. Cost: `split_conversations` (both checks) on a large synthetic export (`large_export`: repetitive, so many moves).

    python benchmarks/bench_split.py          # ~1 min
"""
import random, re, statistics, sys, time
from pathlib import Path
SAMPLES = Path(__file__).resolve().parents[2]/"shared"/"samples"

def words(t): return re.findall(r"\w+", t.lower())
def grams(t, n=13):
    w = words(t)
    return {tuple(w[i:i+n]) for i in range(len(w) - n + 1)}
def norm(t): return re.sub(r"\s+", " ", t.lower()).strip()

def rules(test_replies, train_convs):
    "For each held-out reply: (word for word, 13-gram, 50 characters) against the training conversations."
    from chatft.dataset import SharedText, _all_text
    exact = {norm(m["content"]) for c in train_convs for m in c.messages if m["role"] == "assistant"}
    g13 = set().union(*(grams(_all_text(c)) for c in train_convs)) if train_convs else set()
    index = SharedText({c.id: _all_text(c) for c in train_convs})
    return [(norm(r) in exact, bool(grams(r) & g13), index.longest(r)[0] > 0) for r in test_replies]

def real():
    from chatft.export import read_export
    from chatft.clean import clean
    print("1. Real conversations, split at random (10% held out, 20 seeds), held-out conversations flagged by each rule")
    print(f"   {'sample':<60} {'convs':>5} {'held out':>8} {'exact':>6} {'13-gram':>7} {'50 chars':>8} {'only 50':>7}")
    for p in sorted(SAMPLES.glob("*")):
        if p.suffix not in (".json", ".jsonl"): continue
        try: convs = clean(read_export(p)[0], tokenizer=str.split)[0]
        except Exception as e: continue
        if len(convs) < 20: continue
        tot, only, ex = [0, 0, 0, 0], [], []
        for seed in range(20):
            order = random.Random(seed).sample(convs, len(convs)); k = max(1, round(0.1*len(order)))
            train, test = order[:-k], order[-k:]
            for c in test:
                flags = rules([m["content"] for m in c.messages if m["role"] == "assistant"], train)
                e, g, s = (any(f[i] for f in flags) for i in range(3))
                tot[0] += 1; tot[1] += e; tot[2] += g; tot[3] += s
                if s and not g and len(ex) < 3: ex.append(c)
        print(f"   {p.name[:60]:<60} {len(convs):>5} {tot[0]:>8} {tot[1]:>6} {tot[2]:>7} {tot[3]:>8} {tot[3]-tot[2]:>7}")
        for c in ex:
            from chatft.dataset import SharedText, _all_text
            others = [o for o in convs if o.id != c.id]
            ix = SharedText({o.id: _all_text(o) for o in others}, chars=50)
            best = max(((ix.longest(m["content"]), m["content"]) for m in c.messages if m["role"] == "assistant"), key=lambda x: x[0][0])
            print(f"      only 50 chars: {best[0][0]} characters shared, reply starts {best[1][:90]!r}")

def planted():
    from chatft.core import Conversation
    from chatft.synth import synthetic_conversations
    print("\n2. Planted copies of a training reply (lengths 40-200 words), a fraction of their words replaced: share caught")
    rng = random.Random(0)
    base = [c for c in synthetic_conversations(400, seed=7) if any(len(words(m["content"])) >= 40 for m in c.messages if m["role"] == "assistant")]
    vocab = sorted({w for c in base for m in c.messages for w in words(m["content"])})
    print(f"   {'edited':>8} {'exact':>6} {'13-gram':>7} {'50 chars':>8}   ({len(base)} replies to copy)")
    for rate in (0.0, 0.02, 0.05, 0.1, 0.2, 0.3):
        caught = [0, 0, 0]
        for c in base[:120]:
            reply = max((m["content"] for m in c.messages if m["role"] == "assistant"), key=len)
            toks = reply.split(" ")
            copy = " ".join(rng.choice(vocab) if rng.random() < rate else t for t in toks)
            f = rules([copy], [c])[0]
            for i in range(3): caught[i] += f[i]
        n = min(120, len(base))
        print(f"   {rate:>8.0%} {caught[0]/n:>6.0%} {caught[1]/n:>7.0%} {caught[2]/n:>8.0%}")

def cost():
    import tempfile
    from chatft.synth import large_export
    from chatft.export import read_export
    from chatft.dataset import split_conversations
    print("\n3. Cost of the split's checks (near duplicates, then replies seen in training) on a large synthetic export")
    for mb in (5, 20):
        with tempfile.TemporaryDirectory() as d: convs = read_export(large_export(d, target_mb=mb))[0]
        chars = sum(len(m["content"]) for c in convs for m in c.messages)
        t = time.perf_counter(); train, test, moved = split_conversations(convs); dt = time.perf_counter() - t
        print(f"   {len(convs):>5} conversations, {chars/1e6:.1f} M characters: {dt:.1f} s ({len(test)} held out, {len(moved)} moved)")

if __name__ == "__main__":
    real(); planted(); cost()
