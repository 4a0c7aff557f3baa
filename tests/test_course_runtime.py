"""What a course notebook meets where a learner runs it (Colab, Kaggle, their own machine): the cells that
need Colab change nothing elsewhere and say what to do, nothing imports `google.colab` unguarded (Run all
on Kaggle stops at such an import), and progress bars stay out of outputs saved with widgets off."""
import ast, json, os, re, sys
from pathlib import Path
import nbformat, pytest
from conftest import ROOT
from chatft.export import upload_export, export_hint
from chatft.core import work_on_drive, mount_drive, on_colab, bars_off, in_notebook

def test_colab_helpers_do_nothing_elsewhere(monkeypatch, capsys):
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    monkeypatch.setenv("CHATFT_WORK", "somewhere")
    assert not on_colab()
    assert (mount_drive(), work_on_drive(), upload_export()) == (None, None, None)
    assert os.environ["CHATFT_WORK"] == "somewhere"
    out = capsys.readouterr().out
    assert "WORK_ON_DRIVE works on Colab only; the work folder stays somewhere/." in out
    assert "UPLOAD works on Colab only. To read your export: set EXPORT to its path" in out

def test_kaggle_is_told_how(monkeypatch, capsys):
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    assert work_on_drive() is None and "/kaggle/input/<notebook>/work" in capsys.readouterr().out
    assert 'EXPORT = "/kaggle/input/<dataset>"' in export_hint()

def test_no_bars_off_outside_a_kernel(monkeypatch):
    monkeypatch.setenv("CHATFT_WIDGETS", "0")
    assert (in_notebook(), bars_off()) == (False, False)     # a terminal keeps its bars

def test_datasets_bars_restored(monkeypatch):
    import datasets
    from chatft.dataset import _datasets_bars
    was = datasets.is_progress_bar_enabled()
    try:
        datasets.enable_progress_bars()
        with _datasets_bars(False): assert not datasets.is_progress_bar_enabled()
        assert datasets.is_progress_bar_enabled()
        with _datasets_bars(): assert datasets.is_progress_bar_enabled()      # not a kernel: left on
    finally: (datasets.enable_progress_bars if was else datasets.disable_progress_bars)()

def test_skipped_conversations_reported():
    "`tokenize_conversations` keeps the conversations that train and reports each one it skips, in order."
    from chatft.core import Conversation, Report
    from chatft.dataset import tokenize_conversations
    from chatft.models import load_tokenizer
    talk = lambda id, *texts: Conversation(id, [dict(role=("user", "assistant")[k % 2], content=t) for k, t in enumerate(texts)])
    convs = [talk("a", "hi", "hello"), talk("b", "only a question"), talk("c", "x " * 400, "y " * 400), talk("d", "ok", "fine")]
    report = Report("prepare")
    ds = tokenize_conversations(convs, load_tokenizer(), max_length=128, report=report)
    assert list(ds["id"]) == ["a", "d"] and "skip" not in ds.column_names
    assert [s["id"] for s in report.skipped] == ["b", "c"]

def _colab_check(test)->bool:
    "Whether `test` is true only on Colab: `on_colab()`, `'google.colab' in sys.modules`, or one of them and more."
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And): return any(map(_colab_check, test.values))
    return re.fullmatch(r"on_colab\(\)|'google\.colab' in sys\.modules", ast.unparse(test)) is not None

def _imports_colab(node)->bool:
    if isinstance(node, ast.Import): return any(a.name.split(".")[:2] == ["google", "colab"] for a in node.names)
    if isinstance(node, ast.ImportFrom):
        return (node.module or "").startswith("google.colab") or (node.module == "google" and any(a.name == "colab" for a in node.names))
    return False

def unguarded_colab_imports(stmts:list, guarded:bool=False)->list:
    "Line numbers of `google.colab` imports in `stmts` that run without a check for Colab before them."
    bad = []
    for s in stmts:
        if _imports_colab(s) and not guarded: bad.append(s.lineno)
        if isinstance(s, ast.If):
            off = isinstance(s.test, ast.UnaryOp) and isinstance(s.test.op, ast.Not) and _colab_check(s.test.operand)
            bad += unguarded_colab_imports(s.body, guarded or _colab_check(s.test))
            bad += unguarded_colab_imports(s.orelse, guarded or off)
            if off and any(isinstance(b, (ast.Return, ast.Raise)) for b in s.body): guarded = True   # `if not on_colab(): return`
            continue
        for field in ("body", "orelse", "finalbody", "handlers"):
            bad += unguarded_colab_imports(getattr(s, field, []) or [], guarded)
    return bad

def test_guard_finder_can_fail():
    src = ("from google.colab import files\n"
           "if on_colab(): from google.colab import drive\n"
           "if not on_colab(): from google.colab import userdata\n"
           "def f():\n    if not on_colab(): return None\n    from google.colab import files\n"
           "def g():\n    import google.colab\n")
    assert unguarded_colab_imports(ast.parse(src).body) == [1, 3, 8]

def _sources():
    for nb in sorted((ROOT/"nbs").glob("*.ipynb")):
        for i, c in enumerate(nbformat.read(nb, as_version=4).cells):
            if c.cell_type == "code": yield f"{nb.name} cell {i}", re.sub(r"(?m)^\s*[!%].*$", "", c.source)
    for py in sorted((ROOT/"chatft").glob("*.py")): yield py.name, py.read_text()

def test_no_unguarded_colab_import():
    "No notebook cell or module imports `google.colab` where it is not known to run on Colab."
    bad = [f"{where}, line {n}" for where, src in _sources() for n in unguarded_colab_imports(ast.parse(src).body)]
    assert bad == [], f"google.colab imported without a check for Colab: {bad}"
