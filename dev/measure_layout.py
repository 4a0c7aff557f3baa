"""The measures of issue 22 (a house easy to live in), from the code itself: run it before and after a change.

    python dev/measure_layout.py            # a table: measure, value
    python dev/measure_layout.py --json     # the same as JSON

- modules importing `export`: chatft modules with an import of chatft.export (any form, anywhere in the file);
- modules spelling a run file name: modules whose code has a string literal naming a file of the run folder;
- hand-written option declarations: `add_argument(` calls in chatft/ (all of them, as the issue first counted);
- options that restate a signature: each command's parser is captured (its `parse_args` stopped), and an option
  counts when it was written by hand (not made by `core.add_options`, so it has no `.source`) and its name is a
  parameter of one of the parser's sources, or the parser has no generated option at all (then every hand-written
  option counts);
- longest function: lines of the longest `def` in chatft/ (decorators and docstring included);
- exported names never shown in an example: names in a module's `__all__` that no non-export code cell of any
  notebook mentions (as a whole word);
- lines over 120 characters: share of the lines of chatft/*.py (generated files `_modidx.py` left out);
- notebooks with no stored outputs: notebooks in nbs/ that have code cells, none of which keeps an output
  (index.ipynb, the README's source, has no code cell).
"""
import ast, json, re, sys
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT/"chatft"
RUN_FILES = ("plan.json", "system.txt", "metrics.json", "data_report.json", "log_history.json", "adapter_config.json",
             "adapter_model.safetensors", "eval.json", "chatft.json")

def modules(): return [p for p in sorted(PKG.glob("*.py")) if p.name not in ("_modidx.py", "__init__.py")]

def imports_export(tree):
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and (n.module or "") in ("export", "chatft.export"): return True
        if isinstance(n, ast.ImportFrom) and n.module in (None, "chatft") and any(a.name == "export" for a in n.names): return True
        if isinstance(n, ast.Import) and any(a.name == "chatft.export" for a in n.names): return True
    return False

def spells_run_file(tree):
    return any(isinstance(n, ast.Constant) and isinstance(n.value, str) and any(f in n.value for f in RUN_FILES)
               for n in ast.walk(tree))

def longest_function():
    best = (0, "")
    for p in modules():
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([n.lineno] + [d.lineno for d in n.decorator_list])
                best = max(best, (n.end_lineno - start + 1, f"{p.stem}.{n.name}"))
    return best

def example_text():
    import nbformat
    out = []
    for nb in sorted((ROOT/"nbs").glob("*.ipynb")):
        for c in nbformat.read(nb, as_version=4).cells:
            if c.cell_type == "code" and not re.match(r"^\s*#\|\s*export", c.source): out.append(c.source)
    return "\n".join(out)

def unshown():
    text, names, missing = example_text(), [], []
    for p in modules():
        tree = ast.parse(p.read_text())
        for n in tree.body:
            if isinstance(n, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in n.targets):
                names += [(p.stem, e.value) for e in n.value.elts]
    missing = [f"{m}.{n}" for m, n in names if not re.search(rf"\b{re.escape(n)}\b", text)]
    return len(missing), len(names), missing

def long_lines():
    lines = [l for p in modules() for l in p.read_text().splitlines()]
    return sum(len(l) > 120 for l in lines), len(lines)

def no_outputs():
    import nbformat
    out = []
    for nb in sorted((ROOT/"nbs").glob("*.ipynb")):
        code = [c for c in nbformat.read(nb, as_version=4).cells if c.cell_type == "code"]
        if code and not any(c.get("outputs") for c in code): out.append(nb.name)
    return out

class _Parsed(Exception): pass

def parsers()->dict:
    "`{command: its argparse parser}`, each captured when the command would parse its arguments."
    import argparse, importlib
    from chatft.cli import COMMANDS
    def stop(self, *a, **k): raise _Parsed(self)
    keep, argparse.ArgumentParser.parse_args = argparse.ArgumentParser.parse_args, stop
    out = {}
    try:
        for name, (mod, fn, _) in COMMANDS.items():
            try: getattr(importlib.import_module(mod), fn)([])
            except _Parsed as e: out[name] = e.args[0]
    finally: argparse.ArgumentParser.parse_args = keep
    return out

def restating()->list:
    "Hand-written options that restate a parameter of their parser's sources (all of them where nothing is generated)."
    import inspect
    from chatft.core import _params
    bad = []
    for name, p in parsers().items():
        names = {k for s in getattr(p, "sources", []) for k in _params(s)}
        for a in p._actions:
            if a.dest == "help" or hasattr(a, "source"): continue
            if not getattr(p, "sources", None) or a.dest in names: bad.append(f"{name} {a.dest}")
    return bad

def main():
    trees = {p.stem: ast.parse(p.read_text()) for p in modules()}
    n_long, n_lines = long_lines()
    un, total, missing = unshown()
    fn = longest_function()
    rows = {"modules importing export": sum(imports_export(t) for m, t in trees.items() if m != "export"),
            "modules spelling a run file name": sum(spells_run_file(t) for t in trees.values()),
            "hand-written option declarations (add_argument)": sum(p.read_text().count("add_argument(") for p in modules()),
            "hand-written options that restate a signature": len(restating()),
            "longest function (lines)": f"{fn[0]} ({fn[1]})",
            "exported names never shown in an example": f"{un} of {total} ({un/max(total,1):.0%})",
            "lines over 120 characters": f"{n_long} of {n_lines} ({n_long/max(n_lines,1):.1%})",
            "notebooks with no stored outputs": f"{len(no_outputs())} {no_outputs()}"}
    if "--json" in sys.argv: print(json.dumps(dict(rows, unshown=missing), indent=1)); return
    w = max(map(len, rows))
    for k, v in rows.items(): print(f"{k:<{w}}  {v}")

if __name__ == "__main__": main()
