"""No module of chatft reaches a later step of the course, not even inside a function.

The course runs export -> explore -> clean -> template -> dataset -> train -> prefer -> update -> evaluate -> chat -> deploy
-> serve -> studio. A step may use
any earlier one; `core` is the ground floor under all of them and imports no other chatft module; `models` and
`synth` sit beside the course right after `export` (they may use `export`, every later step may use them); `demo`
and `cli` sit on top and may import anything.
A new module must be given its place here before it can import another chatft module."""
import ast
from pathlib import Path
import pytest

PKG = Path(__file__).resolve().parents[1] / "chatft"
COURSE = ["export", "explore", "clean", "template", "dataset", "train", "prefer", "update", "evaluate", "chat", "deploy", "serve", "studio"]
BESIDE = {"models": 1, "synth": 1}          # between export (0) and explore (1)
GROUND = {"core": -1}                       # under everything
ON_TOP = {"cli", "demo", "_modidx", "__init__"}

def rank(name:str)->float:
    if name in COURSE: return COURSE.index(name)
    if name in BESIDE: return BESIDE[name] - 0.5
    if name in GROUND: return GROUND[name]
    raise KeyError(name)

def chatft_imports(tree:ast.AST)->list:
    "`(line, module)` for every import of a chatft module anywhere in the file (top level or inside functions)."
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name.split(".")[1]) for a in node.names if a.name.startswith("chatft.")]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level == 0 and not (mod == "chatft" or mod.startswith("chatft.")): continue
            if node.level > 1: continue
            parts = mod.split(".") if node.level else mod.split(".")[1:]
            if parts and parts[0]: out.append((node.lineno, parts[0]))
            else: out += [(node.lineno, a.name) for a in node.names]      # `from . import export`, `from chatft import clean`
    return out

def violations(source:str, module:str)->list:
    "Imports in `source` (the text of chatft/<module>.py) that reach a later step or an unplaced module."
    if module in ON_TOP: return []
    bad = []
    for line, target in chatft_imports(ast.parse(source)):
        if target in ON_TOP - {"__init__"}: bad.append(f"{module}.py:{line} imports chatft.{target} (only cli/demo sit on top)")
        elif target == "__init__" or target == module: continue
        else:
            try: later = rank(target) > rank(module)
            except KeyError as e: bad.append(f"{module}.py:{line}: chatft.{e.args[0]} has no place in the course order "
                                             f"(add it to tests/test_layers.py)"); continue
            if later: bad.append(f"{module}.py:{line} imports chatft.{target}, a later step")
    return bad

def test_no_module_imports_a_later_step():
    bad = [v for p in sorted(PKG.glob("*.py")) for v in violations(p.read_text(), p.stem)]
    assert not bad, "\n".join(bad)

@pytest.mark.parametrize("module, source, n_bad", [
    ("explore", "def f():\n    from chatft.clean import keep_dates\n", 1),        # lazy, inside a function
    ("explore", "from .clean import keep_dates", 1),
    ("explore", "import chatft.dataset", 1),
    ("explore", "from chatft import clean", 1),
    ("export", "from .models import DEMO_MODEL", 1),                             # models sits after export
    ("clean", "from chatft.explore import token_lengths\nfrom .export import Report\nfrom .synth import x", 0),
    ("synth", "from .explore import x", 1),
    ("template", "from chatft.cli import main", 1),
    ("clean", "from chatft.newthing import x", 1),                               # unplaced module
    ("cli", "from chatft.train import train", 0),
    ("core", "from .export import Report", 1),                                  # core is the ground floor
    ("export", "from .core import Report, Run", 0),
    ("models", "from chatft.core import ChatftError", 0),
])
def test_the_check_catches(module, source, n_bad):
    assert len(violations(source, module)) == n_bad
