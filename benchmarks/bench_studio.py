"""Training under `chatft studio` against the same plan run by `chatft train` (issue: within 5% a step).

    python benchmarks/bench_studio.py [--steps 20] [--rounds 3] [--model MODEL] [--max-length 512]

One prepared dataset (the synthetic export, read, cleaned and prepared by the studio's own commands), then, in turns
(A B A B ...), the same training two ways:
- `chatft train`: the command typed in a terminal (a subprocess of this script, nothing else running);
- the studio: `studio_app` serving the work folder, a headless Chromium (Debian's) showing its Train tab, so that the
  page's timer reads the job and `progress.json` once a second as it does for a person watching, and the job started
  as the Train button starts it (`Job.start(train_commands(...))`).
Each run trains `--steps` optimizer steps with one plan (`chatft train --plan-only`, then `--plan` in every run); the time of a step is the Trainer's own
`train_runtime / steps` (the model's loading is left out: it is the same command). Reported: each run, the median of
each way, and their ratio. Results in benchmarks/results/bench_studio.json."""
import argparse, json, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
from chatft.models import DEMO_MODEL
from chatft.core import Run
from chatft.studio import (Work, Job, studio_app, launch_studio, export_commands, clean_commands, prepare_commands,
                           plan_commands, train_commands, synthetic_export)

RESULTS = Path(__file__).parent/"results"

def wait(job:Job)->Job:
    while job.status == "running": time.sleep(0.5)
    if job.status != "done": sys.exit(f"{job.name} {job.status}:\n{job.tail(30)}")
    return job

def seconds_per_step(run:Path)->tuple:
    "(seconds a step by the Trainer's clock, steps) of a finished run."
    log = json.loads((run/Run.LOG).read_text())
    end = next(h for h in reversed(log) if "train_runtime" in h)
    return end["train_runtime"] / end["step"], end["step"]

def direct(w:Work, model:str, steps:int, out:Path)->float:
    argv = train_commands(w, model, replace=True)[0]
    argv[argv.index("-o") + 1] = out
    t = time.time()
    subprocess.run([str(Path(sys.executable).parent/"chatft"), *map(str, argv)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.time() - t

def in_studio(w:Work, model:str, steps:int, out:Path, page)->float:
    argv = train_commands(w, model, replace=True)[0]
    argv[argv.index("-o") + 1] = out
    t = time.time()
    job = Job(w.path, "train").start([argv])
    page.get_by_role("tab", name="4 · Train").click()
    wait(job)
    return time.time() - t

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--model", default=DEMO_MODEL)
    p.add_argument("--max-length", type=int, default=512)
    a = p.parse_args()
    w = Work(Path(tempfile.mkdtemp(prefix="bench-studio-"))/"work")
    w.path.mkdir(parents=True)
    wait(w.job("data").start(export_commands(w, synthetic_export(w.path/"synthetic", n=120)) + clean_commands(w)
                             + prepare_commands(w, a.model, max_length=a.max_length)
                             + plan_commands(w, a.model, 60, a.steps)))
    from playwright.sync_api import sync_playwright
    app = launch_studio(studio_app(w.path, a.model))
    rows = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"], headless=True)
        page = browser.new_page()
        page.goto(app.local_url)
        for r in range(a.rounds):
            for way in ("chatft train", "studio"):
                out = w.path/f"run-{r}-{way.split()[0]}"
                wall = direct(w, a.model, a.steps, out) if way == "chatft train" else in_studio(w, a.model, a.steps, out, page)
                s, n = seconds_per_step(out)
                rows.append(dict(round=r, way=way, seconds_per_step=s, steps=n, wall=wall, load=os.getloadavg()[0]))
                print(f"round {r}  {way:<12}  {s:6.3f} s/step  ({n} steps, {wall:5.1f} s in all, load {rows[-1]['load']:.1f})",
                      flush=True)
        browser.close()
    app.close()
    med = {way: statistics.median(x["seconds_per_step"] for x in rows if x["way"] == way) for way in ("chatft train", "studio")}
    ratio = med["studio"] / med["chatft train"]
    print(f"\nmedian s/step: chatft train {med['chatft train']:.3f}, studio {med['studio']:.3f}; "
          f"studio / chatft train = {ratio:.3f} ({(ratio-1)*100:+.1f}%; the issue: within 5%)")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS/"bench_studio.json").write_text(json.dumps(dict(args=vars(a), rows=rows, median=med, ratio=ratio), indent=1))

if __name__ == "__main__": main()
