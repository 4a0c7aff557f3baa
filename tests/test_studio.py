"""chatft studio end to end, in headless Chromium (Playwright, Debian's chromium) on the tiny model (random weights, the demo model's architecture and tokenizer): a bad upload,
the synthetic export read, cleaned, prepared and planned, trained (the page reloaded while it trains), evaluated, a
streamed chat reply, and the GGUF downloaded. A screenshot of each step is saved: in $CHATFT_SCREENSHOTS when it is set
(`CHATFT_SCREENSHOTS=nbs/images/studio` refreshes the notebook's), else in the test's temporary folder."""
import os, json, shutil, subprocess, sys, time, zipfile
from pathlib import Path
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
pytest.importorskip("gradio")
from chatft.models import TINY_MODEL
from chatft.core import Run
from chatft.serve import free_port
from chatft.studio import studio_app, launch_studio, Work, gguf_path, synthetic_export

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.slow
MODEL = os.environ.get("CHATFT_STUDIO_MODEL", TINY_MODEL)   # the demo model's id for the notebook's screenshots
WAIT = 240_000          # ms: a step on a busy CI machine

@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    work = tmp_path_factory.mktemp("studio")/"work"
    app = launch_studio(studio_app(work, MODEL, minutes=0.5, every=0.5), port=free_port())
    yield app, Work(work)
    app.close()

@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    d = Path(os.environ.get("CHATFT_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    d.mkdir(parents=True, exist_ok=True)
    return d

def test_binds_to_localhost_only(studio):
    app, _ = studio
    assert app.local_url.startswith("http://127.0.0.1:") and app.share_url is None

def _state(box:str)->str:
    "JavaScript for the state word the job view `box` shows (Gradio may put its timer text before it)."
    return (f"(((document.querySelector('#{box}')?.innerText || '').split('The same as')[0]"
            ".match(/\\b(running|done|failed|stopped)\\b/) || [''])[0])")

def _done(page, box:str, job, timeout=WAIT):
    "Wait until `job` (started by a click) ends; it must have worked, and the page's view `box` must say so."
    start = time.time()
    while job.status != "running" and time.time() - start < 30: time.sleep(0.2)   # the click starts it
    while job.status == "running" and time.time() - start < timeout/1000: time.sleep(0.5)
    assert job.status == "done", job.tail(30)
    page.wait_for_function(f"() => {_state(box)} === 'done'", timeout=30_000)
    return page.locator(f"#{box}").inner_text()

def _tab(page, name:str): page.get_by_role("tab", name=name).click()

def _shot(page, shots:Path, name:str):
    page.screenshot(path=str(shots/f"{name}.jpg"), type="jpeg", quality=60, full_page=True)

def test_end_to_end_in_chromium(studio, shots, tmp_path):
    if not Path(CHROMIUM).exists(): pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    app, w = studio
    bad = tmp_path/"holiday.txt"; bad.write_text("not an export: a shopping list\neggs\nmilk\n")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            asked = []                                     # every request the page makes, to check none leaves
            page.on("request", lambda r: asked.append(r.url))
            page.goto(app.local_url)
            # 1. a bad upload: the command's one-line error in the page, and the app keeps working
            page.locator("#upload input[type=file]").set_input_files(str(bad))
            page.wait_for_timeout(1000)
            page.locator("#read").click()
            page.wait_for_function(f"() => {_state('export-job')} === 'failed'", timeout=WAIT)
            err = page.locator("#export-job").inner_text()
            assert "chatft export: error:" in err and "holiday.txt" in err, err
            assert not w.convs.exists()
            _shot(page, shots, "0-bad-upload")
            # a ZIP bomb: refused before it is expanded, the same one-line error as the CLI's
            bomb = tmp_path/"conversations-export.zip"
            with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
                with z.open("conversations.json", "w", force_zip64=True) as f:
                    for _ in range(120): f.write(bytes(2**20))
            page.locator("#upload input[type=file]").set_input_files(str(bomb))
            page.wait_for_timeout(1000)
            page.locator("#read").click()
            page.wait_for_function(f"() => {_state('export-job')} === 'failed' && (document.querySelector("
                                   "'#export-job')?.innerText || '').split('The same as')[0].includes('zip bomb')",
                                   timeout=WAIT)
            assert not w.convs.exists()
            # the synthetic export's ZIP, uploaded as a person uploads theirs
            mine = synthetic_export(tmp_path/"mine", n=120, seed=0)
            page.locator("#upload input[type=file]").set_input_files(str(mine))
            page.wait_for_timeout(1000)
            page.locator("#read").click()
            _done(page, "export-job", w.job("export"))
            assert w.job("export").info["commands"][0][1].endswith("uploads/chatgpt-export.zip")
            page.wait_for_function("() => document.querySelectorAll('[data-testid=\"gallery\"] img, .gallery img, "
                                   "button.thumbnail-item img').length >= 3", timeout=60_000)
            _shot(page, shots, "1-export")
            # 2. clean: the report, the redactions, what will train
            _tab(page, "2 · Clean")
            page.locator("#clean").click()
            _done(page, "clean-job", w.job("clean"))
            page.wait_for_timeout(1500)
            assert w.cleaned.exists()
            _shot(page, shots, "2-clean")
            # 3. the model and the plan
            _tab(page, "3 · Model and plan")
            page.locator("#max-steps input").fill("100000")
            page.locator("#minutes input").fill("0.4")
            page.locator("#max-length input").fill("256")
            page.locator("#prepare").click()
            _done(page, "prepare-job", w.job("prepare"))
            page.wait_for_function("() => (document.querySelector('#plan')?.innerText || '').includes('learning rate')",
                                   timeout=120_000)
            _shot(page, shots, "3-plan")
            # 4. train; reload the page while it trains: it shows the running job and its progress
            _tab(page, "4 · Train")
            page.locator("#train").click()
            page.wait_for_selector("#progress progress", timeout=WAIT)
            page.reload()
            _tab(page, "4 · Train")
            page.wait_for_selector("#progress progress", timeout=30_000)
            assert page.evaluate(f"() => {_state('train-job')}") == "running"
            _shot(page, shots, "4-train-after-reload")
            # a crash (the training process killed): the page says so, and Resume finishes the run
            w.job("train").stop()
            page.wait_for_function(f"() => {_state('train-job')} === 'stopped'", timeout=60_000)
            assert Run(w.run.path).state == "interrupted"
            page.locator("#resume").click()
            page.wait_for_function(f"() => {_state('train-job')} === 'running'", timeout=30_000)
            page.locator("#stop").click()                  # Stop: ends at the end of the step, keeps the best
            _done(page, "train-job", w.job("train"))
            page.wait_for_timeout(1500)
            assert Run(w.run.path).state == "finished"
            assert "asked to" in json.loads((w.run.path/Run.METRICS).read_text())["stopped"]
            assert "asked to" in page.locator("#progress").inner_text()
            _shot(page, shots, "4-train")
            # 5. evaluate, and one blind rating
            _tab(page, "5 · Evaluate")
            page.locator("#eval-n input").fill("4")
            page.locator("#eval-tokens input").fill("16")
            page.locator("#eval-probe input").fill("2")
            page.locator("#evaluate").click()
            _done(page, "eval-job", w.job("eval"))
            page.wait_for_function("() => (document.querySelector('#summary')?.innerText || '').includes('held-out loss')",
                                   timeout=60_000)
            if "Prompt" in page.locator("#ab").inner_text():
                page.locator("#rate-a").click()
                page.wait_for_timeout(1000)
                assert (w.run.path/"ab_ratings.jsonl").exists()
            _shot(page, shots, "5-evaluate")
            # 6. a streamed reply from the tuned model, the base beside it
            _tab(page, "6 · Chat")
            page.locator("#message textarea").fill("What should I cook tonight?")
            page.locator("#message textarea").press("Enter")
            bot = page.locator('#tuned [data-testid="bot"]').last
            bot.wait_for(timeout=WAIT)
            page.wait_for_function("() => document.querySelectorAll('[data-testid=\"bot\"]').length >= 2 && "
                                   "!document.querySelector('.generating')", timeout=WAIT)
            page.wait_for_timeout(500)
            assert bot.inner_text().strip()
            _shot(page, shots, "6-chat")
            # 7. the GGUF, downloaded
            _tab(page, "7 · Ship")
            page.locator("#gguf").click()
            _done(page, "ship-job", w.job("ship"))
            link = page.locator("#files a").first
            link.wait_for(timeout=30_000)
            with page.expect_download(timeout=60_000) as dl: link.click()
            got = tmp_path/"downloaded.gguf"; dl.value.save_as(got)
            _shot(page, shots, "7-ship")
        finally: browser.close()
    elsewhere = sorted({u for u in asked if not u.startswith((app.local_url, "data:", "blob:"))})
    assert asked and not elsewhere, elsewhere          # nothing leaves the machine, not even a font request
    made = gguf_path(w, "q8_0")
    assert got.read_bytes()[:4] == b"GGUF" and got.read_bytes() == made.read_bytes()
    metrics = json.loads((w.run.path/Run.METRICS).read_text())
    assert metrics["steps"] > 0
    assert len(list(shots.glob("*.jpg"))) >= 8

def test_stop_keeps_the_best_step(studio):
    "The Stop button's STOP file ends training at the end of a step, as a finished run: adapter saved, reason given."
    _, w = studio
    if not (w.data/"dataset_dict.json").exists():           # the browser test did not run: prepare here
        from chatft.studio import export_commands, clean_commands, prepare_commands, synthetic_export
        job = w.job("stop-data").start(export_commands(w, synthetic_export(w.path/"synth", n=60)) + clean_commands(w)
                                       + prepare_commands(w, TINY_MODEL, max_length=256))
        while job.status == "running": time.sleep(0.5)
        assert job.status == "done", job.tail(20)
    run = Run(w.path/"stopped-run")
    w.job("stop-test").start([["train", w.data, "--model", TINY_MODEL, "-o", run.path, "--max-steps", "500"]])
    deadline = time.time() + 300
    while not (run/Run.PROGRESS).exists() and time.time() < deadline: time.sleep(0.5)
    (run/Run.STOP).touch()
    while w.job("stop-test").status == "running" and time.time() < deadline: time.sleep(0.5)
    assert w.job("stop-test").status == "done", w.job("stop-test").tail(20)
    assert run.state == "finished" and not (run/Run.STOP).exists()
    m = json.loads((run/Run.METRICS).read_text())
    assert m["steps"] < 500 and "asked to" in m["stopped"], m
    assert json.loads((run/Run.PROGRESS).read_text())["done"]

def test_command_line_help():
    out = subprocess.run([sys.executable, "-c", "from chatft.cli import main; import sys; sys.exit(main(sys.argv[1:]))",
                          "studio", "--help"], capture_output=True, text=True)
    assert "--share" in out.stdout and "--work" in out.stdout

def test_plan_only_then_plan(studio, tmp_path):
    "`chatft train --plan-only FILE` writes the plan and nothing else; `--plan FILE` refuses another model's plan."
    _, w = studio
    if not (w.data/"dataset_dict.json").exists(): pytest.skip("needs the prepared data of the tests above")
    chatft = str(Path(sys.executable).parent/"chatft")
    res = subprocess.run([chatft, "train", str(w.data), "--model", TINY_MODEL, "-o", str(tmp_path/"run"), "--max-steps",
                          "3", "--plan-only", str(tmp_path/"plan.json")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path/"plan.json").read_text())["max_steps"] == 3 and not (tmp_path/"run").exists()
    res = subprocess.run([chatft, "train", str(w.data), "--model", "gpt2", "-o", str(tmp_path/"run"), "--plan",
                          str(tmp_path/"plan.json")], capture_output=True, text=True)
    assert res.returncode == 1 and "a plan for chatft/tiny-random-smollm2, not gpt2" in res.stderr
    assert not (tmp_path/"run").exists()
