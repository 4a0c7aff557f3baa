#!/usr/bin/env python
"""Time chatft's export reader against convoviz 0.7.6 and a bare `orjson.loads`, side by side.

    python benchmarks/bench_export.py                 # a ~300 MB conversations.json
    python benchmarks/bench_export.py --mb 50 --zip   # a smaller export, read from a ZIP

The export is made once with `chatft.synth.large_export` and cached under benchmarks/results/
(git-ignored). Each reader runs in its own fresh Python process, which reports the wall time of
the read alone (imports excluded) and its own peak RSS. convoviz needs Python >= 3.12: it runs
from its own venv (benchmarks/results/convoviz-venv), made with --setup-convoviz or by hand:

    /root/.pyenv/versions/3.12.1/bin/python -m venv benchmarks/results/convoviz-venv
    benchmarks/results/convoviz-venv/bin/pip install convoviz==0.7.6

Targets (issue 2): chatft at least 5x convoviz's speed, within 2x of the bare parse, and peak
memory no more than twice the file size.

Issue 22 adds two rows and a table: chatft's streaming scanner (`iter_json_array`, numpy + orjson)
against `ijson.items` (its C backend, yajl2_c) yielding the same top-level items, and what each
says about three damaged copies of the export (truncated, a bad byte, a bad token), so the choice
of the scanner over ijson can be checked side by side in one run.
"""
from __future__ import annotations
import argparse, hashlib, json, os, subprocess, sys, textwrap, zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE/"results"
CONVOVIZ_VENV = RESULTS/"convoviz-venv"
CONVOVIZ_VERSION = "0.7.6"
PY312 = "/root/.pyenv/versions/3.12.1/bin/python"

# Each snippet gets the export's path in sys.argv[1]; it imports first, then times only the read,
# and prints one JSON line: seconds, conversations, peak RSS and RSS after imports (both in kB).
_PRELUDE = "import sys, time, json, resource\npath = sys.argv[1]\n"
_REPORT = ("ru, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)\n"
           "cpu = ru.ru_utime + ru.ru_stime - cpu0 + kids.ru_utime + kids.ru_stime\n"   # with a reader's workers
           "peak_kb = max(ru.ru_maxrss, globals().get('all_kb', 0))\n"
           "print(json.dumps(dict(seconds=t1 - t0, cpu=cpu, n=n, peak_kb=peak_kb, base_kb=base_kb)))\n")
# for a reader that forks workers: the peak of its memory and theirs together, as proportional set sizes (a page the
# processes share counts once), sampled 5 times a second (20 slowed the read it measures)
_ALL_KB = textwrap.dedent("""
    import threading
    all_kb = 0
    try: import psutil                      # installed with accelerate; without it, the reader's own peak only
    except ImportError: psutil = None
    def _sample():
        global all_kb
        me = psutil.Process()
        while True:
            try: all_kb = max(all_kb, sum(p.memory_full_info().pss for p in [me, *me.children(recursive=True)]) // 1024)
            except psutil.Error: pass
            time.sleep(0.2)
    if psutil: threading.Thread(target=_sample, daemon=True).start()
""")
_BASE = ("ru = resource.getrusage(resource.RUSAGE_SELF)\n"
         "base_kb, cpu0 = ru.ru_maxrss, ru.ru_utime + ru.ru_stime\n")

READERS = {
    "bare orjson.loads": dict(python=None, code="""
        import orjson, zipfile
        #BASE
        t0 = time.perf_counter()
        if path.endswith('.zip'): data = orjson.loads(zipfile.ZipFile(path).read('conversations.json'))
        else:
            with open(path, 'rb') as f: data = orjson.loads(f.read())
        n = len(data)
        t1 = time.perf_counter()
        """),
    "chatft read_export": dict(python=None, code="""
        try: from chatft.export import read_export
        except ImportError as e: print(json.dumps(dict(skip=f"chatft.export.read_export does not exist yet ({e})"))); sys.exit(0)
        #BASE
        #ALL
        t0 = time.perf_counter()
        convs, report = read_export(path, progress=False)        # on every core for a large file
        n = len(convs)
        t1 = time.perf_counter()
        """),
    "chatft iter_json_array": dict(python=None, code="""
        import zipfile
        from chatft.export import iter_json_array
        #BASE
        t0 = time.perf_counter()
        f = zipfile.ZipFile(path).open('conversations.json') if path.endswith('.zip') else open(path, 'rb')
        n = sum(1 for _ in iter_json_array(f, 'conversations.json'))
        t1 = time.perf_counter()
        """),
    "ijson items (yajl2_c)": dict(python=None, code="""
        import zipfile
        try: import ijson.backends.yajl2_c as ijson
        except ImportError as e: print(json.dumps(dict(skip=f"no ijson with its C backend ({e}): pip install ijson"))); sys.exit(0)
        #BASE
        t0 = time.perf_counter()
        f = zipfile.ZipFile(path).open('conversations.json') if path.endswith('.zip') else open(path, 'rb')
        n = sum(1 for _ in ijson.items(f, 'item', use_float=True))
        t1 = time.perf_counter()
        """),
    f"convoviz {CONVOVIZ_VERSION}": dict(python="convoviz", code="""
        import tempfile
        from pathlib import Path
        from convoviz.io import load_collection
        #BASE
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:       # convoviz extracts a ZIP to disk before parsing
            collection = load_collection(Path(path), Path(tmp))
            n = len(collection.conversations)
        t1 = time.perf_counter()
        """),
}


def convoviz_python()->Path|None:
    "The convoviz venv's python, if it has convoviz installed."
    py = CONVOVIZ_VENV/"bin"/"python"
    if not py.exists(): return None
    ok = subprocess.run([py, "-c", "import convoviz.io"], capture_output=True).returncode == 0
    return py if ok else None


def setup_convoviz():
    "Make the convoviz venv (Python 3.12) and install convoviz into it."
    if not Path(PY312).exists(): sys.exit(f"{PY312} not found: convoviz {CONVOVIZ_VERSION} needs Python >= 3.12; pass --python312.")
    subprocess.run([PY312, "-m", "venv", CONVOVIZ_VENV], check=True)
    subprocess.run([CONVOVIZ_VENV/"bin"/"pip", "install", "-q", f"convoviz=={CONVOVIZ_VERSION}"], check=True)


def make_export(mb:float, seed:int, as_zip:bool, chars:int|None=None)->Path:
    "The cached benchmark export (made on first use); `chars`: `large_export`'s heavier shape (longer replies)."
    folder = RESULTS/(f"export-{mb:g}mb-seed{seed}" + (f"-chars{chars}" if chars else ""))
    path, stamp = folder/"conversations.json", folder/"synth.sha1"
    version = hashlib.sha1((HERE.parent/"chatft"/"synth.py").read_bytes()).hexdigest()
    if path.exists() and (not stamp.exists() or stamp.read_text() != version):     # made by another version of chatft.synth
        for f in folder.iterdir(): f.unlink()
    if not path.exists():
        print(f"making a ~{mb:g} MB export in {folder} ...", flush=True)
        sys.path.insert(0, str(HERE.parent))
        from chatft.synth import large_export
        tmp = large_export(folder/"tmp", target_mb=mb, seed=seed, chars=chars)
        tmp.replace(path); (folder/"tmp").rmdir(); stamp.write_text(version)
    if not as_zip: return path
    zpath = folder/"chatgpt-export.zip"
    if not zpath.exists():
        with zipfile.ZipFile(zpath.with_suffix(".part"), "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z: z.write(path, "conversations.json")
        zpath.with_suffix(".part").replace(zpath)
    return zpath


def run_reader(name:str, path:Path, python)->dict:
    "Run one reader in a fresh process; returns its JSON report (or a `skip` reason)."
    code = textwrap.dedent(READERS[name]['code']).replace('#BASE\n', _BASE).replace('#ALL\n', _ALL_KB)
    code = _PRELUDE + code + _REPORT
    env = dict(os.environ, PYTHONPATH=str(HERE.parent) if READERS[name]['python'] is None else "")
    p = subprocess.run([str(python), "-c", code, str(path)], capture_output=True, text=True, env=env)
    if p.returncode != 0: return dict(skip=f"failed (exit {p.returncode}): {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ''}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def best_of(runs:list)->dict:
    "The fastest of several runs of one reader, with the largest peak RSS seen."
    if any('skip' in r for r in runs): return next(r for r in runs if 'skip' in r)
    return dict(min(runs, key=lambda r: r['seconds']), cpu=min(r['cpu'] for r in runs), peak_kb=max(r['peak_kb'] for r in runs), runs=len(runs))


def table(results:dict, size:int)->str:
    mb = size / 1e6
    rows = [f"{'reader':<22} {'wall (s)':>9} {'CPU (s)':>8} {'peak RSS (MB)':>14} {'peak/file':>10} {'after imports (MB)':>19} {'conversations':>14}"]
    for name, r in results.items():
        if 'skip' in r: rows.append(f"{name:<22} skipped: {r['skip']}"); continue
        rows.append(f"{name:<22} {r['seconds']:>9.2f} {r['cpu']:>8.2f} {r['peak_kb']/1024:>14.0f} {r['peak_kb']*1024/size:>9.2f}x {r['base_kb']/1024:>19.0f} {r['n']:>14}")
    return "\n".join(rows)


def ratios(results:dict, size:int)->str:
    c, v, o = (results.get(k, {}) for k in ("chatft read_export", f"convoviz {CONVOVIZ_VERSION}", "bare orjson.loads"))
    ok = lambda r: r and 'skip' not in r
    out = []
    def line(what, value, target, passed): out.append(f"  {what:<38} {value:<18} target {target:<8} {'PASS' if passed else 'MISS'}")
    if ok(c) and ok(v):
        s, u = v['seconds'] / c['seconds'], v['cpu'] / c['cpu']; line("chatft speed vs convoviz", f"{s:.1f}x (CPU {u:.1f}x)", ">= 5x", s >= 5)
    if ok(c) and ok(o):
        s, u = c['seconds'] / o['seconds'], c['cpu'] / o['cpu']; line("chatft time / bare orjson.loads", f"{s:.2f}x (CPU {u:.2f}x)", "<= 2x", s <= 2)
    if ok(c): s = c['peak_kb'] * 1024 / size; line("chatft peak RSS / file size", f"{s:.2f}x", "<= 2x", s <= 2)
    if ok(v) and ok(o): out.append(f"  {'(convoviz time / bare orjson.loads)':<38} {v['seconds']/o['seconds']:.1f}x")
    return "\n".join(out) if out else "  (no ratios: chatft's reader did not run)"


def damaged_copies(path:Path, mb:float=20)->dict:
    "Broken copies of the export's first conversations (about `mb` MB, a whole JSON list), each damaged past the middle."
    sys.path.insert(0, str(HERE.parent))
    import orjson
    from chatft.export import iter_json_array
    items, size = [], 0
    with (zipfile.ZipFile(path).open("conversations.json") if path.suffix == ".zip" else open(path, "rb")) as f:
        for item in iter_json_array(f, "conversations.json"):
            items.append(item); size += len(orjson.dumps(item))
            if size > mb * 1e6: break
    raw = orjson.dumps(items)
    k = raw.index(b'":null', len(raw) // 2)                     # the end of a key, past the middle
    return {"truncated in the middle": raw[:len(raw) // 2],
            "a control byte in a string": raw[:k - 1] + b"\x01" + raw[k:],
            "a quote lost (a bad byte)": raw[:k] + b"\x01" + raw[k + 1:],
            "a bad token (a value missing)": raw[:k + 2] + b"}" + raw[k + 6:]}


def error_messages(path:Path)->str:
    "What the scanner and ijson say about each damaged copy: the message, and the items yielded before it."
    import io
    sys.path.insert(0, str(HERE.parent))
    from chatft.export import iter_json_array
    try: import ijson.backends.yajl2_c as ijson
    except ImportError: ijson = None
    readers = {"chatft iter_json_array": lambda f: iter_json_array(f, "conversations.json")}
    if ijson: readers["ijson items (yajl2_c)"] = lambda f: ijson.items(f, "item", use_float=True)
    out = []
    for what, data in damaged_copies(path).items():
        out.append(f"{what} ({len(data)/1e6:.0f} MB):")
        for name, items in readers.items():
            n = 0
            try:
                for _ in items(io.BytesIO(data)): n += 1
                msg = "no error"
            except Exception as e: msg = f"{type(e).__name__}: " + " ".join(str(e).split())
            out.append(f"  {name:<24} after {n} items: {msg[:220]}")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=300, help="size of the synthetic conversations.json in MB (default 300)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--zip", action="store_true", help="read the export from a ZIP (as ChatGPT sends it) instead of conversations.json")
    ap.add_argument("--repeat", type=int, default=1, help="rounds of all readers; each reader's fastest run counts (default 1)")
    ap.add_argument("--only", nargs="*", choices=list(READERS), help="run only these readers")
    ap.add_argument("--no-errors", action="store_true", help="leave out the table of error messages on damaged copies")
    ap.add_argument("--setup-convoviz", action="store_true", help=f"make {CONVOVIZ_VENV.relative_to(HERE.parent)} with convoviz {CONVOVIZ_VERSION} first")
    args = ap.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.setup_convoviz and convoviz_python() is None: setup_convoviz()
    path = make_export(args.mb, args.seed, args.zip)
    size = (path.parent/"conversations.json").stat().st_size
    print(f"export: {path} ({size/1e6:.0f} MB of conversations.json{', zipped to %.0f MB' % (path.stat().st_size/1e6) if args.zip else ''})\n", flush=True)
    pythons, results = {}, {}
    for name in READERS:
        if args.only and name not in args.only: continue
        pythons[name] = sys.executable if READERS[name]['python'] is None else convoviz_python()
        if pythons[name] is None: results[name] = dict(skip=f"no convoviz venv at {CONVOVIZ_VENV}: run with --setup-convoviz")
    runs = {name: [] for name in pythons if name not in results}
    for k in range(args.repeat):                   # rounds, so that a busy moment hits every reader alike
        for name in runs:
            print(f"round {k + 1}/{args.repeat}: {name} ...", flush=True)
            runs[name].append(run_reader(name, path, pythons[name]))
    results.update({name: best_of(r) for name, r in runs.items()})
    results = {name: results[name] for name in READERS if name in results}
    print("\n" + table(results, size) + "\n\nratios (peak/file uses the size of conversations.json):\n" + ratios(results, size))
    if not args.no_errors: print("\nerrors on damaged copies of the export's first 20 MB (bytes 0-based):\n" + error_messages(path))
    out = RESULTS/f"bench_export-{args.mb:g}mb{'-zip' if args.zip else ''}.json"
    out.write_text(json.dumps(dict(path=str(path), size=size, results=results), indent=2))
    print(f"\nsaved {out}")


if __name__ == "__main__": main()
