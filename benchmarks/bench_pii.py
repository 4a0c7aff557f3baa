"""Precision and recall of chatft's private-data redaction, per type, beside presidio-analyzer and scrubadub.

    python benchmarks/bench_pii.py [--labelled benchmarks/pii_labelled.jsonl] [--no-presidio] [--no-scrubadub]

The labelled set (benchmarks/pii_labelled.jsonl) holds short snippets written for this benchmark,
with made-up but well-formed values (Luhn-valid cards, mod-97-valid IBANs, keys in each vendor's
format) and near-misses that must stay (versions, dates, hashes, UUIDs, git SHAs, order numbers,
placeholders such as `sk-your-key-here`). Each line: {"id", "text", "pii": [{"type", "value"}], "note"}.

Scoring, per type T: a labelled value counts as found when predicted spans of type T cover at least
90% of its characters (a half-redacted key still leaks); a predicted span of type T is correct when
it overlaps a labelled value of type T. "leaked" counts labelled values that no predicted span of
any type covers (type confusion is not a leak). presidio-analyzer and scrubadub are optional and
not chatft dependencies: `pip install presidio-analyzer scrubadub` plus a spaCy English model for
presidio (without one, presidio runs with its pattern recognizers only, and the table says so).
"""
import argparse, logging, sys, time, importlib.metadata as md
from collections import defaultdict
from pathlib import Path
import orjson

TYPES = ["EMAIL", "PHONE", "CARD", "IBAN", "IP", "API_KEY", "SECRET", "CREDENTIALS"]

def load(path):
    rows = [orjson.loads(l) for l in Path(path).read_bytes().splitlines() if l.strip()]
    for r in rows:
        spans = []
        for p in r["pii"]:
            i = r["text"].find(p["value"])
            assert i >= 0, f"snippet {r['id']}: {p['value']!r} not in text"
            spans.append((i, i + len(p["value"]), p["type"]))
        r["spans"] = spans
    return rows

def chatft_system():
    from chatft.clean import find_pii
    return "chatft", lambda text: [(f.start, f.end, f.type) for f in find_pii(text)]

PRESIDIO_MAP = {"EMAIL_ADDRESS": "EMAIL", "PHONE_NUMBER": "PHONE", "CREDIT_CARD": "CARD", "IBAN_CODE": "IBAN", "IP_ADDRESS": "IP"}

def presidio_system():
    logging.getLogger("tldextract").setLevel(logging.CRITICAL)   # it tries to fetch the public suffix list, then uses its copy
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    try: from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    except ImportError: return None
    model = next((d.metadata["Name"].replace("-", "_") for d in md.distributions() if d.metadata["Name"].lower().replace("-", "_").startswith("en_core_web")), None)
    if model:
        from presidio_analyzer.nlp_engine import NlpEngineProvider
        nlp = NlpEngineProvider(nlp_configuration=dict(nlp_engine_name="spacy", models=[dict(lang_code="en", model_name=model)])).create_engine()
        engine, name = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"]), f"presidio ({model})"
    else:
        from presidio_analyzer.nlp_engine import NlpEngine
        raise SystemExit("presidio without a spaCy model is not wired up here; install one (see pypi: en-core-web-sm-*)")
    ents = list(PRESIDIO_MAP)
    def find(text):
        return [(r.start, r.end, PRESIDIO_MAP[r.entity_type]) for r in engine.analyze(text, language="en", entities=ents)]
    return name, find

SCRUBADUB_MAP = {"email": "EMAIL", "phone": "PHONE", "credit_card": "CARD", "credential": "SECRET"}

def scrubadub_system():
    try: import scrubadub
    except ImportError: return None
    scrubber = scrubadub.Scrubber(locale="en_GB")
    def find(text):
        return [(f.beg, f.end, SCRUBADUB_MAP[f.type]) for f in scrubber.iter_filth(text) if f.type in SCRUBADUB_MAP]
    return f"scrubadub {md.version('scrubadub')}", find

def score(rows, find):
    "Per type: found, labelled, correct predictions, predictions; and leaked values; plus the time taken."
    s = defaultdict(lambda: dict(found=0, gold=0, correct=0, pred=0, leaked=0)); t = time.perf_counter(); touched_clean = 0
    for r in rows:
        pred = find(r["text"])
        if not r["spans"] and pred: touched_clean += 1
        for gs, ge, gt in r["spans"]:
            s[gt]["gold"] += 1
            same = set().union(*[set(range(max(gs, ps), min(ge, pe))) for ps, pe, pt in pred if pt == gt] or [set()])
            anyt = set().union(*[set(range(max(gs, ps), min(ge, pe))) for ps, pe, pt in pred] or [set()])
            s[gt]["found"] += len(same) >= .9 * (ge - gs)
            s[gt]["leaked"] += len(anyt) < .9 * (ge - gs)
        for ps, pe, pt in pred:
            s[pt]["pred"] += 1
            s[pt]["correct"] += any(ps < ge and gs < pe and gt == pt for gs, ge, gt in r["spans"])
    return s, time.perf_counter() - t, touched_clean

def fmt(x): return "   -" if x is None else f"{x:.3f}"

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--labelled", default=str(Path(__file__).with_name("pii_labelled.jsonl")))
    p.add_argument("--no-presidio", action="store_true"); p.add_argument("--no-scrubadub", action="store_true")
    p.add_argument("--subset", help="only snippets whose note contains this, e.g. 'held out' (written after the detectors were tuned)")
    a = p.parse_args(argv)
    rows = [r for r in load(a.labelled) if not a.subset or a.subset in r.get("note", "")]
    systems = [chatft_system()]
    if not a.no_presidio: systems.append(presidio_system() or ("presidio (not installed)", None))
    if not a.no_scrubadub: systems.append(scrubadub_system() or ("scrubadub (not installed)", None))
    gold = defaultdict(int)
    for r in rows:
        for *_, t in r["spans"]: gold[t] += 1
    print(f"{len(rows)} snippets, {sum(gold.values())} private values ({', '.join(f'{t} {gold[t]}' for t in TYPES)}), "
          f"{sum(not r['spans'] for r in rows)} snippets without any\n")
    results = {}
    for name, find in systems:
        results[name] = score(rows, find) if find else None
    names = [n for n, _ in systems]
    print(f"{'type':<12}" + "".join(f"{n[:26]:>28}" for n in names))
    print(f"{'':<12}" + "".join(f"{'recall  precision  leaked':>28}" for _ in names))
    for t in TYPES:
        line = f"{t:<12}"
        for n in names:
            res = results[n]
            if res is None: line += f"{'not installed':>28}"; continue
            c = res[0][t]
            rec = c["found"] / c["gold"] if c["gold"] else None
            pre = c["correct"] / c["pred"] if c["pred"] else None
            line += f"{fmt(rec):>10} {fmt(pre):>10} {c['leaked']:>6}"
        print(line)
    line = f"{'all types':<12}"
    for n in names:
        res = results[n]
        if res is None: line += f"{'':>28}"; continue
        c = res[0]; F = sum(c[t]["found"] for t in TYPES); G = sum(c[t]["gold"] for t in TYPES)
        C = sum(c[t]["correct"] for t in TYPES); P = sum(c[t]["pred"] for t in TYPES); L = sum(c[t]["leaked"] for t in TYPES)
        line += f"{fmt(F / G):>10} {fmt(C / P if P else None):>10} {L:>6}"
    print(line)
    print(f"{'clean hit':<12}" + "".join(f"{(str(results[n][2]) + ' snippets') if results[n] else '':>28}" for n in names))
    print(f"{'time':<12}" + "".join(f"{(f'{results[n][1]:.2f} s') if results[n] else '':>28}" for n in names))
    print("\nrecall: labelled values of the type that were (>=90%) covered by a prediction of that type; precision: predictions of the type"
          "\nthat overlap a labelled value of that type; leaked: labelled values not covered by any prediction; clean hit: snippets"
          "\nwithout private data where something was flagged. '-' : the system does not detect this type.")
    return results

if __name__ == "__main__": main()
