"""The Gradio app of chatft.chat, called through gradio_client and driven in headless Chromium with Playwright.
Needs `gradio`, `gradio_client`, `playwright` and Debian's `chromium` (installed by .ci/run and setup.sh)."""
import os, re, socket, shutil
from pathlib import Path
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
pytest.importorskip("gradio")
from chatft.models import DEMO_MODEL, TINY_MODEL
from chatft.chat import chat_app, launch_app, load_chat, practice_run

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.slow
SAMPLING = [24, 0.0, 1.0, 50, 1.0, -1]      # max new tokens, temperature, top p, top k, repetition penalty, seed

def free_port()->int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

@pytest.fixture(scope="module")
def chat(tmp_path_factory):
    run = practice_run(tmp_path_factory.mktemp("browser")/"run", DEMO_MODEL, steps=3, n=16, max_length=256)
    return load_chat(run, device="cpu")

@pytest.fixture(scope="module")
def app(chat):
    app = launch_app(chat_app(chat, max_new_tokens=24), port=free_port())
    yield app
    app.close()

def test_binds_to_localhost_only(app):
    assert app.local_url.startswith("http://127.0.0.1:") and app.share_url is None

def test_gradio_client_chat_and_arena(app, chat):
    from gradio_client import Client
    client = Client(app.local_url, verbose=False)
    reply = client.predict("name three fruits", *SAMPLING, api_name="/chat")
    assert reply == chat.reply("name three fruits", max_new_tokens=24)
    base, tuned = client.predict("decline a meeting about the boiler nicely", *SAMPLING, api_name="/arena")
    text = lambda m: "".join(p["text"] for p in m["content"]) if isinstance(m["content"], list) else m["content"]
    want = chat.compare("decline a meeting about the boiler nicely", max_new_tokens=24)
    assert (text(base[-1]), text(tuned[-1])) == (want["base"], want["tuned"]) and want["base"] != want["tuned"]

def test_in_headless_chromium(app, chat, tmp_path):
    if not Path(CHROMIUM).exists(): pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    want = chat.reply("name three fruits", max_new_tokens=24).strip()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(app.local_url)
            box = page.locator('textarea[data-testid="textbox"]:visible').first
            box.fill("name three fruits")
            page.locator('[data-testid="submit-button"]:visible').first.click()
            bot = page.locator('[data-testid="bot"]').last
            bot.wait_for(timeout=120_000)
            page.wait_for_function("() => !document.querySelector('[data-testid=\"stop-button\"]')", timeout=120_000)
            page.wait_for_timeout(300)
            seen = bot.inner_text().strip()
            page.screenshot(path=str(tmp_path/"chat.png"), full_page=True)
        finally: browser.close()
    assert (tmp_path/"chat.png").stat().st_size > 5000
    words = lambda t: re.sub(r"(?m)^\s*(\d+\.|[-*])\s+", "", t).split()   # the page renders Markdown lists
    assert words(seen) == words(want), (seen, want)
