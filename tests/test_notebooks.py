"""Run every notebook in `nbs/` through nbdev's own test runner, one pytest test per notebook.

Each notebook runs in its own process (`nbdev-test`), so a notebook that loads a model or sets
global state cannot affect another. Cells flagged `#| slow` run when slow tests are enabled
(see conftest.py); `#| gpu` cells only with `--gpu`. Each notebook gets its own empty work folder
(`CHATFT_WORK`), so notebooks run in parallel never read each other's half-made results and each
one shows that it can start from nothing.

`.ci/run` runs every course notebook (`nbs/0*`) under Run all before this, every cell (slow ones included) as Colab
and again as Kaggle, and then sets `CHATFT_COURSE_RAN=1`: there the course notebooks are not run a third time here.
"""
import subprocess, sys, os
from pathlib import Path
import pytest
from conftest import ROOT, enabled_flags

NOTEBOOKS = sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith("_"))

@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook(nb, request, tmp_path):
    if os.environ.get("CHATFT_COURSE_RAN") == "1" and nb.name[:2].isdigit():
        pytest.skip("ran under Run all, every cell, as Colab and as Kaggle earlier in this CI run (.ci/run)")
    flags = " ".join(enabled_flags(request.config))
    cmd = [sys.executable, "-m", "nbdev.test", str(nb), "--flags", flags, "--n-workers", "0"]
    # a notebook after 05 starts with no run and trains one (`course_run`): 20 seconds of it here, not the learner's 2 minutes
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CHATFT_WORK": str(tmp_path/"work"), "CHATFT_COURSE_MINUTES": "0.3"}
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    assert res.returncode == 0 and "Success" in res.stdout, f"{nb.name} failed:\n{res.stdout[-4000:]}\n{res.stderr[-8000:]}"

COURSE = [p for p in NOTEBOOKS if p.name[:2].isdigit()]

@pytest.mark.parametrize("nb", COURSE, ids=[p.stem for p in COURSE])
def test_stored_outputs_publishable(nb):
    "Teaching cells keep their outputs for the docs and GitHub: some, small, and no local path in them."
    sys.path.insert(0, str(ROOT / "dev"))
    from run_notebooks import output_problems
    import nbformat
    book = nbformat.read(nb, as_version=4)
    assert output_problems(book) == []
    with_outputs = [c for c in book.cells if c.cell_type == "code" and c.get("outputs")]
    assert len(with_outputs) >= 5, f"{nb.name}: only {len(with_outputs)} cells keep outputs: run dev/run_notebooks.py --store"

def test_setup_cell_first():
    "Every course notebook's first code cell is the visible setup cell that installs chatft on Colab/Kaggle."
    import nbformat
    for path in COURSE:
        first = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        assert first.source.startswith("# Setup: on Colab or Kaggle"), f"{path.name}: the first code cell is not the setup cell"
        assert "#|" not in first.source, f"{path.name}: the setup cell must be visible and run everywhere"
