"""Kills at any moment and full disks, for each command that writes: `export`, `clean`, `prepare`, `train`, `prefer`,
`merge` and `gguf`, run through the console script as a person runs them.

**Kills.** Each command is started again and again and killed with SIGKILL at its 1st, 3rd, 9th, 27th... write (a write
is a change seen in its output folder: a file that appears, grows or goes), until a run ends before its kill. After
every kill nothing at the output path may be half-written: the output is either absent (or, for `train`, an
interrupted run) or whole and the same as an unkilled run's; hidden `.part`/`.partial` leftovers are allowed only until
the next run, which removes them. Each next try is the same command (`train`: with `--resume` once the folder holds
an interrupted run), and the last one must succeed and write what the unkilled run wrote.

**Full disks.** The outputs go to a small tmpfs (mounted here; the test is skipped, saying so, where mounting is not
allowed): the command ends with exit code 1 and one line naming the path and the space it needs, the input is
untouched, and nothing is left on the small disk that a later command would trust."""
import os, sys, time, signal, hashlib, importlib.util, subprocess
from pathlib import Path
import pytest

CHATFT = str(Path(sys.executable).parent/"chatft")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
TINY = "chatft/tiny-random-smollm2"

def files(folder:Path)->dict:
    "{relative path: size} of every file under `folder`."
    out = {}
    for root, _, names in os.walk(folder):
        for n in names:
            p = Path(root)/n
            try: out[str(p.relative_to(folder))] = p.stat().st_size
            except FileNotFoundError: pass          # gone between listing and looking
    return out

def digest(path:Path)->str:
    "A hash of a file, or of a folder's files (names and bytes), leaving out hidden (`.part`, `.partial`) leftovers."
    if path.is_file(): return hashlib.sha256(path.read_bytes()).hexdigest()
    h = hashlib.sha256()
    for rel in sorted(files(path)):
        if any(part.startswith(".") for part in Path(rel).parts): continue
        h.update(rel.encode()); h.update((path/rel).read_bytes())
    return h.hexdigest()

def killed_at(cmd:list, watch:Path, at:int)->bool:
    "Run `cmd` and SIGKILL it at the `at`-th change seen under `watch`; False when it ended first (it must succeed)."
    p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen, changes, hang = files(watch), 0, time.monotonic() + 600
    while p.poll() is None and time.monotonic() < hang:
        now = files(watch)
        if now != seen:
            seen, changes = now, changes + 1
            if changes == at:
                p.send_signal(signal.SIGKILL)
                p.wait()
                return True
        time.sleep(0.003)
    if p.poll() is None: p.kill()
    err = p.communicate()[1]
    assert p.returncode == 0, err[-3000:]
    return False

def kill_until_done(cmd, watch:Path, check, again=None, most:int=12)->int:
    """Kill `cmd` at its 1st, 3rd, 9th... change until a try ends by itself, or a kill came after its output was whole
    (`check()` is True: a next run would rightly refuse to replace it); `check()` after each kill. The kills made."""
    kills = 0
    for i in range(most):
        if not killed_at(again(cmd) if (again and kills) else cmd, watch, 3**i): return kills
        kills += 1
        if check(): return kills
    pytest.fail(f"{cmd[1]} was still running after {most} kills")

def visible(folder:Path)->list: return sorted(n for n in os.listdir(folder) if not n.startswith("."))

@pytest.fixture(scope="module")
def export(tmp_path_factory)->Path:
    from chatft.synth import synthetic_export
    return synthetic_export(tmp_path_factory.mktemp("export")/"e", n=40, seed=3)

def _run(*args, cwd=None):
    res = subprocess.run([CHATFT, *map(str, args)], env=ENV, capture_output=True, text=True, cwd=cwd)
    assert res.returncode == 0, res.stderr[-3000:]
    return res

@pytest.fixture(scope="module")
def reference(export, tmp_path_factory)->dict:
    "What each step writes when nothing kills it."
    d = tmp_path_factory.mktemp("reference")
    _run("export", export, "-o", d/"convs.jsonl")
    _run("clean", d/"convs.jsonl", "-o", d/"clean.jsonl")
    _run("prepare", d/"clean.jsonl", "--model", TINY, "--max-length", "128", "-o", d/"prep")
    return dict(dir=d, convs=digest(d/"convs.jsonl"), clean=digest(d/"clean.jsonl"), prep=digest(d/"prep"))

@pytest.mark.slow
@pytest.mark.parametrize("step", ["export", "clean", "prepare"])
def test_killed_data_steps_leave_old_or_whole_files(step, export, reference, tmp_path):
    ref = reference["dir"]
    cmd = dict(export=[CHATFT, "export", str(export), "-o", str(tmp_path/"convs.jsonl")],
               clean=[CHATFT, "clean", str(ref/"convs.jsonl"), "-o", str(tmp_path/"clean.jsonl")],
               prepare=[CHATFT, "prepare", str(ref/"clean.jsonl"), "--model", TINY, "--max-length", "128",
                        "-o", str(tmp_path/"prep")])[step]
    out = tmp_path/dict(export="convs.jsonl", clean="clean.jsonl", prepare="prep")[step]
    want = reference[dict(export="convs", clean="clean", prepare="prep")[step]]
    def check():
        if out.exists(): assert digest(out) == want, f"{out} is there but not whole"
        return out.exists()
    kills = kill_until_done(cmd, tmp_path, check)
    assert kills >= 1 and digest(out) == want
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")], os.listdir(tmp_path)    # leftovers removed

def _children(pid:int)->set:
    "The processes `pid` started, and theirs (Linux's /proc), zombies left out."
    kids, out = {}, set()
    for d in os.listdir("/proc"):
        if not d.isdigit(): continue
        try: stat = Path(f"/proc/{d}/stat").read_text()
        except OSError: continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if state != "Z": kids.setdefault(int(ppid), []).append(int(d))
    todo = [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            if k not in out: out.add(k); todo.append(k)
    return out

def _alive(pid:int)->bool:
    try: return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError: return False

@pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux only")
@pytest.mark.parametrize("workers", [1, 3])
def test_killed_prepare_leaves_no_worker_behind(workers, reference, tmp_path):
    """SIGKILL a `chatft prepare` once `workers` of the processes it forks run (`--num-proc 2`: the split beside the
    rendering, `datasets.map`'s two workers and its manager); every one ends with it (before, a killed prepare left
    its workers rendering and the manager asleep for good, holding memory: this test failed at 3)."""
    cmd = [CHATFT, "prepare", str(reference["dir"]/"clean.jsonl"), "--model", TINY, "--max-length", "128",
           "-o", str(tmp_path/"prep"), "--num-proc", "2"]
    for attempt in range(20):                   # a run can end before its workers are caught: try again
        p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seen, end = set(), time.monotonic() + 120
        while p.poll() is None and time.monotonic() < end and len(seen) < workers:
            seen = _children(p.pid)
            time.sleep(0.002)
        if p.poll() is None and seen:
            p.send_signal(signal.SIGKILL); p.wait()
            break
        p.wait()
    else: pytest.fail("prepare never ran its workers long enough to be killed among them")
    end = time.monotonic() + 10
    while (left := [k for k in seen if _alive(k)]) and time.monotonic() < end: time.sleep(0.05)
    assert not left, f"processes left running after prepare was killed: {left}"

def _adapter(run:Path)->dict:
    from safetensors.torch import load_file
    return load_file(run/"adapter_model.safetensors")

@pytest.mark.slow
def test_killed_training_resumes_to_the_same_adapter(reference, tmp_path):
    "`chatft train` killed at any write: the folder is never a finished run until it is whole; `--resume` finishes it."
    import torch
    from chatft.core import Run
    from chatft.train import last_checkpoint, load_run
    args = lambda out: [CHATFT, "train", str(reference["dir"]/"prep"), "--model", TINY, "-o", str(out), "--max-steps",
                        "8", "--save-steps", "2", "--eval-steps", "4", "--lr", "5e-3", "--grad-accum", "1"]
    _run(*args(tmp_path/"full")[1:])
    out = tmp_path/"runs"/"killed"
    out.parent.mkdir()
    def check():
        state = Run(out).state
        if state == "finished": load_run(out)                                   # whole, or it would fail here
        ck = last_checkpoint(out)
        if ck: assert (ck/"trainer_state.json").is_file() and (ck/"adapter_model.safetensors").is_file()
        return state == "finished"
    kills = kill_until_done(args(out), out.parent, check, again=lambda cmd: [*cmd, "--resume"] if Run(out).state else cmd)
    assert kills >= 2 and Run(out).state == "finished"
    a, b = _adapter(tmp_path/"full"), _adapter(out)
    for k in a: torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-6)
    assert not [p for p in files(out) if Path(p).name.startswith(".")], files(out)

@pytest.fixture(scope="module")
def tiny_run(reference, tmp_path_factory)->Path:
    run = tmp_path_factory.mktemp("run")/"run"
    _run("train", reference["dir"]/"prep", "--model", TINY, "-o", run, "--max-steps", "2", "--save-steps", "100")
    return run

@pytest.mark.slow
@pytest.mark.parametrize("step", ["merge", "gguf", "prefer"])
def test_killed_model_steps_leave_nothing_half_written(step, tiny_run, tmp_path):
    if step == "gguf": pytest.importorskip("llama_cpp")
    if step == "prefer":
        from test_prefer import learnable_pairs
        pairs = learnable_pairs(tmp_path.parent/f"{tmp_path.name}-pairs.jsonl")
        cmd = lambda out: [CHATFT, "prefer", str(pairs), "--run", str(tiny_run), "-o", str(out), "--test-size", "0.25",
                           "--epochs", "1", "--no-redact"]
    else:
        cmd = lambda out: [CHATFT, step, str(tiny_run), "-o", str(out)]
    name = "model.gguf" if step == "gguf" else "out"
    ref = tmp_path/"reference"/name
    ref.parent.mkdir()
    _run(*cmd(ref)[1:])
    out = tmp_path/"killed"/name
    out.parent.mkdir()
    same = (lambda: digest(out) == digest(ref)) if step != "prefer" else (lambda: (out/"adapter_model.safetensors").is_file())
    def check():
        assert visible(out.parent) in ([], [name], [name, "model.Modelfile"], ["model.Modelfile"]), visible(out.parent)
        if out.exists(): assert same(), f"{out} is there but not whole"
        return out.exists()
    kills = kill_until_done(cmd(out), out.parent, check)
    assert kills >= 1 and same()
    assert not [n for n in os.listdir(out.parent) if n.startswith(".")], os.listdir(out.parent)

# --- full disks --------------------------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    "A 256 KB tmpfs at tmp_path/disk (root mounts it; elsewhere the test is skipped and says why)."
    disk = tmp_path/"disk"
    disk.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True, text=True)
    if res.returncode: pytest.skip(f"cannot mount a small tmpfs here ({res.stderr.strip() or 'not root'})")
    yield disk
    subprocess.run(["umount", "-l", str(disk)])

def _fails_for_space(args, path:Path, inputs:list):
    "The command ends with one line naming `path` and the space needed, leaving its inputs as they were."
    before = {p: digest(p) for p in inputs}
    res = subprocess.run([CHATFT, *map(str, args)], env=ENV, capture_output=True, text=True)
    lines = [l for l in res.stderr.splitlines() if l.startswith("chatft ")]      # progress bars aside
    assert res.returncode == 1 and len(lines) == 1 and "Traceback" not in res.stderr, res.stderr[-3000:]
    assert str(path) in lines[0] and "not enough space" in lines[0] and " MB free" in lines[0], lines[0]
    assert {p: digest(p) for p in inputs} == before
    return lines[0]

@pytest.mark.slow
def test_full_disk_data_steps(export, reference, small_disk):
    "A 256 KB disk: 600 conversations (about 550 KB of JSON) fill it while they are written; nothing is left."
    from chatft.synth import synthetic_export
    big = synthetic_export(small_disk.parent/"big", n=600, seed=4)
    line = _fails_for_space(["export", big, "-o", small_disk/"convs.jsonl"], small_disk/"convs.jsonl", [big])
    assert "needs about" in line
    assert os.listdir(small_disk) == []
    _run("export", big, "-o", small_disk.parent/"convs.jsonl")
    _fails_for_space(["clean", small_disk.parent/"convs.jsonl", "-o", small_disk/"clean.jsonl"], small_disk/"clean.jsonl",
                     [small_disk.parent/"convs.jsonl"])
    assert os.listdir(small_disk) == []
    _fails_for_space(["prepare", small_disk.parent/"convs.jsonl", "--model", TINY, "--max-length", "128",
                      "-o", small_disk/"prep"], small_disk/"prep", [small_disk.parent/"convs.jsonl"])
    assert os.listdir(small_disk) == []

@pytest.mark.slow
def test_full_disk_model_steps(tiny_run, small_disk):
    """A 256 KB disk cannot hold the tiny model's merged weights (13 MB) nor a run's checkpoints: merge, gguf and train
    say so before writing (train leaves only its plan: an interrupted run, never a finished one)."""
    from chatft.core import Run
    line = _fails_for_space(["merge", tiny_run, "-o", small_disk/"merged"], small_disk/"merged", [tiny_run])
    assert "needs about" in line and os.listdir(small_disk) == []
    if importlib.util.find_spec("llama_cpp"):
        _fails_for_space(["gguf", tiny_run, "-o", small_disk/"m.gguf"], small_disk/"m.gguf", [tiny_run])
        assert os.listdir(small_disk) == []
    line = _fails_for_space(["train", tiny_run/"data", "--model", TINY, "-o", small_disk/"run", "--max-steps", "2"],
                            small_disk/"run", [tiny_run/"data"])
    assert "--resume" in line and Run(small_disk/"run").state != "finished"
