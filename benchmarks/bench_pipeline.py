#!/usr/bin/env python
"""A heavy user's history through `chatft export`, `clean` and `prepare`: each step's time and peak memory, beside
the anchors measured in the same run (issue 28).

    python benchmarks/bench_pipeline.py                      # a ~292 MB export shaped like the issue's heavy user
    python benchmarks/bench_pipeline.py --chars 0 --mb 300   # the ~300 MB export of bench_export.py (short messages)
    python benchmarks/bench_pipeline.py --mb 20              # a smaller one
    python benchmarks/bench_pipeline.py --mb 20 --scaling    # also clean at 1/4, 1/2 and all of the conversations

Each step runs as a person runs it: the console script in a fresh process (imports included), one after the other,
each reading what the one before wrote; a small wrapper process reports the step's wall time and the peak RSS of
its largest process (`ru_maxrss` of its children). The anchors, each in a fresh process with its imports left out:
- the reader alone: `chatft.export.read_export` and convoviz 0.7.6 (when its venv exists: see bench_export.py);
- the floor for `prepare`: one `tokenizer.apply_chat_template(messages, tokenize=True)` per cleaned conversation
  (one render and one tokenization, no masks, no split), with the model `prepare` uses.

Targets (issue 28): the reader at least 5x convoviz; export + clean + prepare in at most 2 minutes on 2 cores;
prepare within 2x of the one-render loop; clean's peak memory at most 2x its input file, flat as the history grows.
"""
from __future__ import annotations
import argparse, json, os, subprocess, sys, tempfile, textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_export import RESULTS, CONVOVIZ_VERSION, make_export, run_reader, convoviz_python

CHATFT = str(Path(sys.executable).parent/"chatft")
# a fresh process that runs one command and prints its wall time and its children's peak RSS (kB)
_WRAP = textwrap.dedent("""
    import json, resource, subprocess, sys, time
    t = time.perf_counter()
    rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)
    print(json.dumps(dict(rc=rc, seconds=time.perf_counter() - t, peak_kb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)))
""")
_FLOOR = textwrap.dedent("""
    import json, resource, sys, time
    from chatft.core import read_jsonl
    from chatft.models import load_tokenizer
    convs, tok = read_jsonl(sys.argv[1]), load_tokenizer(sys.argv[2])
    msgs = [[dict(role=m['role'], content=m['content']) for m in c.messages] for c in convs]
    t = time.perf_counter()
    n = sum(len(tok.apply_chat_template(m, tokenize=True, return_dict=False)) for m in msgs)
    print(json.dumps(dict(seconds=time.perf_counter() - t, tokens=n, peak_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))
""")

def timed(cmd:list)->dict:
    "Run `cmd` in a fresh wrapper process: its wall time and peak RSS."
    p = subprocess.run([sys.executable, "-c", _WRAP, *map(str, cmd)], capture_output=True, text=True)
    r = json.loads(p.stdout.strip().splitlines()[-1])
    if r["rc"]: sys.exit(f"{' '.join(map(str, cmd[:2]))} failed with exit code {r['rc']}")
    return r

def floor(cleaned:Path, model:str)->dict:
    p = subprocess.run([sys.executable, "-c", _FLOOR, str(cleaned), model], capture_output=True, text=True)
    if p.returncode: sys.exit(f"the one-render loop failed: {p.stderr.strip().splitlines()[-1]}")
    return json.loads(p.stdout.strip().splitlines()[-1])

def pipeline(export:Path, work:Path, model:str)->dict:
    "export, clean and prepare one after the other in `work`: {step: timing}."
    out = {}
    out["chatft export"] = timed([CHATFT, "export", export, "-o", work/"convs.jsonl", "-q"])
    out["chatft clean"] = timed([CHATFT, "clean", work/"convs.jsonl", "-o", work/"clean.jsonl"])
    out["chatft prepare"] = timed([CHATFT, "prepare", work/"clean.jsonl", "--model", model, "-o", work/"prepared"])
    return out

def first(src:Path, dest:Path, n:int)->Path:
    "The first `n` conversations of a chatft JSONL file."
    with open(src, "rb") as f, open(dest, "wb") as g:
        for i, line in enumerate(f):
            if i == n: break
            g.write(line)
    return dest

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=292, help="size of the synthetic conversations.json in MB (default 292)")
    ap.add_argument("--chars", type=int, default=7000,
                    help="characters of text an ordinary conversation has (large_export's `chars`: 7000 gives about "
                         "5,500 a conversation over all, in about 5.5 messages, the issue's heavy user; 0: "
                         "bench_export.py's export, about 2,000 in 14 short messages)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="HuggingFaceTB/SmolLM2-135M-Instruct", help="the model prepare renders for")
    ap.add_argument("--scaling", action="store_true", help="also clean the first 1/4 and 1/2 of the conversations")
    ap.add_argument("--no-convoviz", action="store_true", help="leave out the convoviz anchor")
    args = ap.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    export = make_export(args.mb, args.seed, as_zip=False, chars=args.chars or None)
    size = export.stat().st_size
    with tempfile.TemporaryDirectory(dir=RESULTS) as tmp:
        work = Path(tmp)
        steps = pipeline(export, work, args.model)
        n = sum(1 for _ in open(work/"convs.jsonl", "rb"))
        kept = sum(1 for _ in open(work/"clean.jsonl", "rb"))
        text_mb = (work/"convs.jsonl").stat().st_size / 1e6
        chars = sum(len(m["content"]) for line in open(work/"convs.jsonl", "rb") for m in json.loads(line)["messages"])
        msgs = sum(len(json.loads(line)["messages"]) for line in open(work/"convs.jsonl", "rb"))
        anchors = {"read_export alone (in process)": run_reader("chatft read_export", export, sys.executable)}
        py = None if args.no_convoviz else convoviz_python()
        anchors[f"convoviz {CONVOVIZ_VERSION} (in process)"] = (run_reader(f"convoviz {CONVOVIZ_VERSION}", export, py) if py
                                                                 else dict(skip="no convoviz venv (bench_export.py --setup-convoviz)"))
        anchors["one apply_chat_template per conversation"] = floor(work/"clean.jsonl", args.model)
        scaling = {}
        if args.scaling:
            for share in (4, 2, 1):
                part = first(work/"convs.jsonl", work/f"convs-{share}.jsonl", n // share)
                r = timed([CHATFT, "clean", part, "-o", work/f"clean-{share}.jsonl", "--overwrite"])
                scaling[n // share] = dict(r, input_mb=part.stat().st_size / 1e6)
    print(f"\nexport: {export} ({size/1e6:.0f} MB, {n} conversations, {text_mb:.1f} MB as chatft JSONL; {kept} kept by clean)")
    print(f"text: {chars/1e6:.1f} M characters, {chars/max(n, 1):,.0f} a conversation, "
          f"{msgs/max(n, 1):.1f} messages a conversation")
    print(f"model: {args.model}; {os.cpu_count()} cores\n")
    print("| step | wall (s) | peak RSS (MB) | MB/s of the export |\n|---|---|---|---|")
    for k, r in steps.items(): print(f"| {k} | {r['seconds']:.1f} | {r['peak_kb']/1024:.0f} | {size/1e6/r['seconds']:.1f} |")
    total = sum(r["seconds"] for r in steps.values())
    print(f"| **export + clean + prepare** | **{total:.1f}** | | |")
    print("\n| anchor | seconds (imports left out) | peak RSS (MB) |\n|---|---|---|")
    for k, r in anchors.items():
        print(f"| {k} | {r['seconds']:.2f} | {r['peak_kb']/1024:.0f} |" if "skip" not in r else f"| {k} | skipped: {r['skip']} | |")
    if scaling:
        print("\n| clean of the first N conversations | input (MB) | wall (s) | peak RSS (MB) | peak / input |\n|---|---|---|---|---|")
        for k, r in scaling.items():
            print(f"| {k} | {r['input_mb']:.1f} | {r['seconds']:.1f} | {r['peak_kb']/1024:.0f} | {r['peak_kb']*1024/1e6/r['input_mb']:.1f}x |")
    c, v, f = anchors["read_export alone (in process)"], anchors[f"convoviz {CONVOVIZ_VERSION} (in process)"], anchors["one apply_chat_template per conversation"]
    print("\ntargets:")
    if "skip" not in v: print(f"  reader vs convoviz: {v['seconds']/c['seconds']:.1f}x (target >= 5x)")
    print(f"  export + clean + prepare: {total:.0f} s (target <= 120 s)")
    print(f"  prepare / one-render loop: {steps['chatft prepare']['seconds']/f['seconds']:.1f}x (target <= 2x; the step "
          "includes its imports and the split)")
    clean_in = text_mb * 1e6 / 1024
    print(f"  clean's peak / its input: {steps['chatft clean']['peak_kb']/clean_in:.1f}x (target <= 2x)")
    out = RESULTS/(f"bench_pipeline-{args.mb:g}mb" + (f"-chars{args.chars}" if args.chars else "") + ".json")
    out.write_text(json.dumps(dict(export=str(export), size=size, conversations=n, steps=steps, anchors=anchors,
                                   scaling=scaling), indent=2))
    print(f"\nsaved {out}")

if __name__ == "__main__": main()
