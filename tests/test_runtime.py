"""What a learner's Colab or Kaggle runtime meets first: the setup cell (one template in every course notebook, tried
in a throwaway venv with wheels made here), and Colab's GPU metadata where the badges ask for a GPU (that no cell imports `google.colab`
unguarded: tests/test_course_runtime.py)."""
import ast, os, re, subprocess, sys, zipfile
from pathlib import Path
import nbformat, pytest
from conftest import ROOT

NOTEBOOKS = sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith("_"))
COURSE = [p for p in NOTEBOOKS if p.name[:2].isdigit()]
EXTRAS_LINE = re.compile(r'^EXTRAS = "([a-z,]*)" +# .*$', re.M)
VERSION = re.search(r'__version__ = "(.+)"', (ROOT / "chatft" / "__init__.py").read_text())[1]

def setup_cell(path:Path)->str:
    return next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code").source

def test_thirteen_course_notebooks():
    assert len(COURSE) == 13, [p.name for p in COURSE]

def test_setup_cells_are_one_template():
    "Every course notebook installs chatft the same way; only the extras it needs differ."
    cells = {p.name: setup_cell(p) for p in COURSE}
    for name, src in cells.items(): assert len(EXTRAS_LINE.findall(src)) == 1, f"{name}: no single EXTRAS line"
    template = {name: EXTRAS_LINE.sub('EXTRAS = ...', src) for name, src in cells.items()}
    first = template[COURSE[0].name]
    for name, src in template.items(): assert src == first, f"{name}: its setup cell differs from {COURSE[0].name}'s"
    assert f'VERSION = "{VERSION}"' in first, "the setup cell's VERSION must be chatft/__init__.py's"
    assert '"git+https://github.com/chatft/chatft@main"' in first and "pip install chatft" not in first

# The template itself, run as a learner's runtime runs it, in a throwaway venv, offline: wheels made here stand for
# this project's chatft, someone else's, and an extra's requirement.

def wheel(folder:Path, name:str, version:str, files:dict, requires=())->Path:
    "A minimal pure-Python wheel."
    dist = f"{name.replace('-', '_')}-{version}"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {**files, f"{dist}.dist-info/METADATA": meta, f"{dist}.dist-info/RECORD": "",
             f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    path = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for k, v in files.items(): z.writestr(k, v)
    return path

@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    "A new venv (its own pip, no chatft) and a folder of wheels pip may take (no index: nothing reaches the network)."
    root = tmp_path_factory.mktemp("setup")
    subprocess.run([sys.executable, "-m", "venv", str(root/"venv")], check=True)
    (root/"wheels").mkdir()
    wheel(root/"wheels", "chatft-extra-dep", "1.0", {"chatft_extra_dep.py": ""})
    return root

def setup(venv:Path, extras:str, source, runtime:bool=True)->subprocess.CompletedProcess:
    src = EXTRAS_LINE.sub(f'EXTRAS = "{extras}"  # test', setup_cell(COURSE[0]))
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "COLAB_RELEASE_TAG", "KAGGLE_KERNEL_RUN_TYPE", "PYTHONPATH") and not k.startswith("PIP_")}
    env.update(CHATFT_INSTALL=str(source), PIP_NO_INDEX="1", PIP_FIND_LINKS=str(venv/"wheels"), PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_FORCE_REINSTALL="1")   # each test's wheel replaces the last one's, same version or not
    if runtime: env["KAGGLE_KERNEL_RUN_TYPE"] = "Interactive"
    return subprocess.run([str(venv/"venv"/"bin"/"python"), "-c", src], env=env, capture_output=True, text=True, cwd=venv)

def ours(venv, version=VERSION, synth=True):
    files = {"chatft/__init__.py": f'__version__ = "{version}"\n', **({"chatft/synth.py": ""} if synth else {})}
    return wheel(venv, "chatft", version, files, ['chatft-extra-dep; extra == "ui"', 'no-such-package-here; extra == "serve"'])

@pytest.mark.slow
def test_setup_does_nothing_off_colab_and_kaggle(venv):
    res = setup(venv, "", ours(venv), runtime=False)
    assert res.returncode == 0 and res.stdout == "Not on Colab or Kaggle: nothing installed here (install chatft as the README says).\n"

@pytest.mark.slow
def test_setup_installs_says_what_and_checks_it(venv):
    res = setup(venv, "ui", ours(venv))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == f"Installing chatft from {venv}/chatft-{VERSION}-py3-none-any.whl ..." and lines[1].startswith("  done in ")
    assert lines[2] == "Installing chatft's 'ui' extra: chatft-extra-dep ..." and lines[3].startswith("  done in ")
    assert lines[4] == f"chatft {VERSION} is ready, from file://{venv}/chatft-{VERSION}-py3-none-any.whl"

@pytest.mark.slow
@pytest.mark.parametrize("extras,source,says", [
    ("serve", None, "Installing chatft's 'serve' extra: no-such-package-here failed (pip exited with 1)"),
    ("", "no/such/chatft.whl", "Installing chatft from no/such/chatft.whl failed (pip exited with 1)"),
    ("", "9.9", "installed chatft 9.9, not this project's chatft"),
    ("", "no synth", "without chatft.synth, not this project's chatft"),
])
def test_setup_stops_clearly(venv, extras, source, says):
    "A failed install or an impostor stops the notebook at its first cell with one message that says what failed."
    src = {None: ours(venv), "9.9": ours(venv, "9.9"), "no synth": ours(venv, synth=False)}.get(source, source)
    res = setup(venv, extras, src)
    assert res.returncode == 1 and "RuntimeError: " in res.stderr
    message = res.stderr.split("RuntimeError: ", 1)[1]
    assert says in message, message
    if "pip exited" in says: assert "pip said:\n" in message and "\nERROR: " in message   # pip's own last lines follow

# Colab's GPU metadata: the Colab badge opens a T4 exactly where the Kaggle badge (README.md) asks for one.

def kaggle_badges()->dict:
    "{notebook file: the accelerator its README Kaggle badge asks for, or None}."
    found = re.findall(r"kaggle\.com/notebooks/welcome\?src=https://github\.com/chatft/chatft/blob/main/nbs/([\w.]+\.ipynb)"
                       r"(?:&accelerator=(\w+))?\)", (ROOT / "README.md").read_text())
    return {name: acc or None for name, acc in found}

def test_colab_gpu_metadata_where_kaggle_asks_for_a_gpu():
    badges = kaggle_badges()
    assert sorted(badges) == [p.name for p in COURSE]
    for path in COURSE:
        meta = nbformat.read(path, as_version=4).metadata
        colab_gpu = meta.get("accelerator") == "GPU" and meta.get("colab", {}).get("gpuType") == "T4"
        assert badges[path.name] in (None, "nvidiaTeslaT4"), f"{path.name}: a Kaggle badge for {badges[path.name]}"
        assert colab_gpu == (badges[path.name] is not None), (
            f"{path.name}: Kaggle badge asks for {badges[path.name]}, notebook metadata accelerator={meta.get('accelerator')!r}, colab={meta.get('colab')!r}: "
            'give a notebook that trains "accelerator": "GPU" and "colab": {"gpuType": "T4"}, and its Kaggle badge a T4')
