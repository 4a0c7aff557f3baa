"""Recall, precision and look-alikes kept of chatft's private-data redaction, per type, beside presidio-analyzer and scrubadub.

    python benchmarks/bench_pii.py [--sets labelled tune heldout] [--no-presidio] [--no-scrubadub]

Three hand-written sets, each line {"id", "text", "pii": [{"type", "value"}], "keep": [look-alikes], "note"}:
- `pii_labelled.jsonl` (452 snippets): the first benchmark, structured kinds (cards, IBANs, keys...) and
  near-misses that must stay (versions, dates, hashes, UUIDs, order numbers, placeholders).
- `pii_tune.jsonl` (101 snippets): secrets as people paste them (auth headers, prose passwords in
  English/Spanish/French/German, .env and JSON values), national IDs and street addresses, each beside a
  harmless look-alike. The detectors for these kinds were developed against this set.
- `pii_heldout.jsonl` (172 snippets): the same kinds, written and committed before any of those detectors,
  and never looked at while tuning them. Its numbers are the honest ones.

Scoring, per type T: a labelled value counts as found when predicted spans of type T cover at least 90% of
its characters (a half-redacted key still leaks); a predicted span of type T is correct when it overlaps a
labelled value of type T. "leaked" counts labelled values that no predicted span of any type covers (type
confusion is not a leak). A look-alike is kept when no predicted span overlaps it.

presidio-analyzer and scrubadub are optional and not chatft dependencies (`pip install presidio-analyzer
scrubadub`). Without a spaCy model (none can be downloaded here) presidio runs with its pattern recognizers
only (en, es, it, pl, ...: every language's), with no context words, keeping results scored >= 0.3.
"""
import argparse, logging, time, importlib.metadata as md
from collections import defaultdict
from pathlib import Path
import orjson

TYPES = ["EMAIL", "PHONE", "CARD", "IBAN", "IP", "API_KEY", "SECRET", "CREDENTIALS", "NATIONAL_ID", "ADDRESS"]
NEW_KINDS = ["SECRET", "NATIONAL_ID", "ADDRESS"]        # what issue 14 is about
HERE = Path(__file__).parent
SETS = dict(labelled=HERE/"pii_labelled.jsonl", tune=HERE/"pii_tune.jsonl", heldout=HERE/"pii_heldout.jsonl")

def spans_of(text, values, where, avoid=()):
    "Where each value is, its first place that does not overlap `avoid` (a look-alike may also appear inside a secret)."
    out = []
    for v in values:
        i = text.find(v)
        while i >= 0 and (any(i < e and s < i + len(v) for s, e, *_ in avoid) or (i, i + len(v)) in out): i = text.find(v, i + 1)
        assert i >= 0, f"snippet {where}: {v!r} not in text"
        out.append((i, i + len(v)))
    return out

def load(path):
    rows = [orjson.loads(l) for l in Path(path).read_bytes().splitlines() if l.strip()]
    for r in rows:
        r["spans"] = [(s, e, p["type"]) for (s, e), p in zip(spans_of(r["text"], [p["value"] for p in r["pii"]], r["id"]), r["pii"])]
        r["keep_spans"] = spans_of(r["text"], r.get("keep", []), r["id"], r["spans"])
    return rows

def chatft_system():
    from chatft.clean import find_pii
    return "chatft", lambda text: [(f.start, f.end, f.type) for f in find_pii(text)]

PRESIDIO_MAP = {"EMAIL_ADDRESS": "EMAIL", "PHONE_NUMBER": "PHONE", "CREDIT_CARD": "CARD", "IBAN_CODE": "IBAN", "IP_ADDRESS": "IP",
                "US_SSN": "NATIONAL_ID", "US_ITIN": "NATIONAL_ID", "US_PASSPORT": "NATIONAL_ID", "UK_NINO": "NATIONAL_ID",
                "ES_NIF": "NATIONAL_ID", "ES_NIE": "NATIONAL_ID", "IT_FISCAL_CODE": "NATIONAL_ID", "IT_PASSPORT": "NATIONAL_ID",
                "IT_IDENTITY_CARD": "NATIONAL_ID", "PL_PESEL": "NATIONAL_ID", "UK_NHS": "NATIONAL_ID", "AU_TFN": "NATIONAL_ID",
                "IN_PAN": "NATIONAL_ID", "IN_AADHAAR": "NATIONAL_ID", "IN_PASSPORT": "NATIONAL_ID", "FI_PERSONAL_IDENTITY_CODE": "NATIONAL_ID",
                "SG_NRIC_FIN": "NATIONAL_ID", "KR_RRN": "NATIONAL_ID", "US_DRIVER_LICENSE": "NATIONAL_ID"}

def presidio_system(min_score=0.3):
    logging.getLogger("tldextract").setLevel(logging.CRITICAL)   # it tries to fetch the public suffix list, then uses its copy
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    try: from presidio_analyzer import RecognizerRegistry, PatternRecognizer
    except ImportError: return None
    reg = RecognizerRegistry()
    reg.load_predefined_recognizers(languages=["en", "es", "it", "pl", "fi", "ko", "de", "fr"])
    recs = [r for r in reg.recognizers if isinstance(r, PatternRecognizer) and set(r.supported_entities) & set(PRESIDIO_MAP)]
    def find(text):
        return [(x.start, x.end, PRESIDIO_MAP[x.entity_type]) for r in recs for x in r.analyze(text, r.supported_entities, None)
                if x.entity_type in PRESIDIO_MAP and x.score >= min_score]
    return f"presidio {md.version('presidio-analyzer')} patterns", find

SCRUBADUB_MAP = {"email": "EMAIL", "phone": "PHONE", "credit_card": "CARD", "credential": "SECRET", "social_security_number": "NATIONAL_ID",
                 "national_insurance_number": "NATIONAL_ID", "tax_reference_number": "NATIONAL_ID", "postalcode": "ADDRESS"}

def scrubadub_system():
    try: import scrubadub
    except ImportError: return None
    scrubber = scrubadub.Scrubber(locale="en_GB")
    def find(text):
        return [(f.beg, f.end, SCRUBADUB_MAP[f.type]) for f in scrubber.iter_filth(text) if f.type in SCRUBADUB_MAP]
    return f"scrubadub {md.version('scrubadub')}", find

def covered(a, b, pred, kind=None):
    "Characters of [a, b) covered by predicted spans (of `kind`, if given)."
    return len(set().union(*[set(range(max(a, s), min(b, e))) for s, e, t in pred if kind in (None, t)] or [set()]))

def score(rows, find):
    "Per type: found, labelled, correct predictions, predictions, leaked values; look-alikes kept; snippets touched; time."
    s = defaultdict(lambda: dict(found=0, gold=0, correct=0, pred=0, leaked=0))
    kept = touched_clean = 0
    t = time.perf_counter()
    for r in rows:
        pred = find(r["text"])
        touched_clean += not r["spans"] and bool(pred)
        for gs, ge, gt in r["spans"]:
            s[gt]["gold"] += 1
            s[gt]["found"] += covered(gs, ge, pred, gt) >= .9 * (ge - gs)
            s[gt]["leaked"] += covered(gs, ge, pred) < .9 * (ge - gs)
        kept += sum(not any(ps < ke and ks < pe for ps, pe, _ in pred) for ks, ke in r["keep_spans"])
        for ps, pe, pt in pred:
            s[pt]["pred"] += 1
            s[pt]["correct"] += any(ps < ge and gs < pe and gt == pt for gs, ge, gt in r["spans"])
    return dict(types=s, kept=kept, time=time.perf_counter() - t, touched_clean=touched_clean)

def fmt(x): return "   -" if x is None else f"{x:.3f}"

def totals(c, types):
    F, G, C, P, L = (sum(c[t][k] for t in types) for k in ("found", "gold", "correct", "pred", "leaked"))
    return (F / G if G else None), (C / P if P else None), L

def table(name, rows, results):
    gold = defaultdict(int)
    for r in rows:
        for *_, t in r["spans"]: gold[t] += 1
    n_keep = sum(len(r["keep_spans"]) for r in rows)
    print(f"## {name}: {len(rows)} snippets, {sum(gold.values())} private values "
          f"({', '.join(f'{t} {gold[t]}' for t in TYPES if gold[t])}), {n_keep} look-alikes, "
          f"{sum(not r['spans'] for r in rows)} snippets without private data\n")
    names = list(results)
    W = 28
    print(f"{'type':<13}" + "".join(f"{n[:W-2]:>{W}}" for n in names))
    print(f"{'':<13}" + "".join(f"{'recall  precision  leaked':>{W}}" for _ in names))
    def line(label, cells): print(f"{label:<13}" + "".join(f"{c:>{W}}" for c in cells))
    def trio(rec, pre, leak): return f"{fmt(rec):>10} {fmt(pre):>10} {leak:>6}"
    for t in TYPES:
        if not gold[t] and not any(res and res["types"][t]["pred"] for res in results.values()): continue
        line(t, [trio(*totals(res["types"], [t])) if res else "not installed" for res in results.values()])
    line("new kinds", [trio(*totals(res["types"], NEW_KINDS)) if res else "" for res in results.values()])
    line("all types", [trio(*totals(res["types"], TYPES)) if res else "" for res in results.values()])
    if n_keep: line("look-alikes", [f"{res['kept'] / n_keep:.3f} kept" if res else "" for res in results.values()])
    line("clean hit", [f"{res['touched_clean']} snippets" if res else "" for res in results.values()])
    line("time", [f"{res['time']:.2f} s" if res else "" for res in results.values()])
    print()

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sets", nargs="+", default=list(SETS), help=f"labelled sets: names ({', '.join(SETS)}) or JSONL paths")
    p.add_argument("--no-presidio", action="store_true")
    p.add_argument("--no-scrubadub", action="store_true")
    p.add_argument("--subset", help="only snippets whose note contains this, e.g. 'held out' or 'address'")
    a = p.parse_args(argv)
    systems = [chatft_system()]
    if not a.no_presidio: systems.append(presidio_system() or ("presidio (not installed)", None))
    if not a.no_scrubadub: systems.append(scrubadub_system() or ("scrubadub (not installed)", None))
    out = {}
    for s in a.sets:
        path = SETS.get(s, s)
        rows = [r for r in load(path) if not a.subset or a.subset in r.get("note", "")]
        out[s] = {name: score(rows, find) if find else None for name, find in systems}
        table(Path(path).name, rows, out[s])
    print("recall: labelled values of the type that were (>=90%) covered by a prediction of that type; precision: predictions of the type"
          "\nthat overlap a labelled value of that type; leaked: labelled values not covered by any prediction; new kinds: SECRET,"
          "\nNATIONAL_ID and ADDRESS together; look-alikes: harmless look-alikes that no prediction touched; clean hit: snippets"
          "\nwithout private data where something was flagged. '-': the system does not detect this type.")
    return out

if __name__ == "__main__": main()
