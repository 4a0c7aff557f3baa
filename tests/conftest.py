"""Shared test set-up.

Slow tests (marked `slow`, and notebook cells flagged `#| slow`) run when `CI` is set or with
`pytest --slow`; `gpu` ones run only with `pytest --gpu` on a machine with CUDA.
"""
import os
from pathlib import Path
import pytest

# No test reaches the network: the Hub clients fail at once instead of trying.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# `pytest -n N` runs N workers: one thread each uses the cores without oversubscribing them (two
# OpenMP threads per worker on two cores made the training tests about 3x slower). Set before torch loads.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "samples"

def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", help="run slow tests (default when CI is set)")
    parser.addoption("--gpu", action="store_true", help="run tests that need a CUDA GPU")

def enabled_flags(config) -> list:
    "Test flags (notebook cell flags and pytest markers) that this run enables."
    flags = []
    if config.getoption("--slow") or os.environ.get("CI"): flags.append("slow")
    if config.getoption("--gpu"): flags.append("gpu")
    return flags

def pytest_collection_modifyitems(config, items):
    flags = enabled_flags(config)
    for item in items:
        for flag in ("slow", "gpu"):
            if flag in item.keywords and flag not in flags:
                item.add_marker(pytest.mark.skip(reason=f"{flag} test: run with --{flag}" + (" (or CI=1)" if flag == "slow" else "")))

@pytest.fixture(scope="session")
def samples() -> Path:
    "The folder of real exports written by others (../shared/samples); tests skip without it."
    if not SAMPLES.is_dir(): pytest.skip("../shared/samples is not here")
    return SAMPLES

@pytest.fixture(scope="session")
def tiny_practice_run(tmp_path_factory) -> Path:
    "A run of the tiny random model (one step on 8 synthetic conversations): for tests that need any run folder."
    from chatft.chat import practice_run
    from chatft.models import TINY_MODEL
    return practice_run(tmp_path_factory.mktemp("tiny")/"run", TINY_MODEL, steps=1, n=8, max_length=128)

def chatft_server(run, *args):
    """`chatft serve RUN ARGS...` started through the console script on a free port, once its /health answers:
    (process, base url). The caller stops it (`proc.kill(); proc.wait()`)."""
    import subprocess, sys, time, httpx
    from chatft.serve import free_port
    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).parent/"chatft"), "serve", str(run), "--port", str(port), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200: break
        except httpx.HTTPError: time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()
    return proc, f"http://127.0.0.1:{port}"

# `python -c PAUSED_TRAIN MARKER STEP chatft-command...`: the command, standing still (for a test to kill it) once training
# has ended step STEP, after writing MARKER
PAUSED_TRAIN = """
import sys, time, pathlib, transformers
marker, at = pathlib.Path(sys.argv[1]), int(sys.argv[2])
class Pause(transformers.TrainerCallback):
    def on_step_end(self, args, state, control, **kw):
        if state.global_step == at:
            marker.write_text(str(at))
            time.sleep(3600)
fit = transformers.Trainer.train
def paused(self, *a, **kw):
    self.add_callback(Pause())
    return fit(self, *a, **kw)
transformers.Trainer.train = paused
from chatft.cli import main
sys.exit(main(sys.argv[3:]))
"""
