"""chatft.serve: the engine against `Chat.reply` (greedy and seeded, alone and batched, a cancelled request leaves the
batch; greedy replies computed another way, batched or served, are compared by `chatft.deploy.parting`'s rule: the
same, or parting at a near tie), request checking, and the real `chatft serve` console script driven by the official
`openai` client: streaming and not, multi-turn, `stop`, bad requests, API key, a client disconnecting mid-stream,
8 concurrent clients x 4 requests, a 429 with Retry-After beyond `--max-waiting`, any JSON body a 4xx (hypothesis),
and a clean exit on SIGTERM."""
import os, sys, json, time, signal, subprocess, threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import pytest
from conftest import chatft_server

os.environ.setdefault("OMP_NUM_THREADS", "1")
from chatft.models import TINY_MODEL
from chatft.chat import load_chat, practice_run
from chatft.serve import ApiError, Ask, Engine, Job, Limits, free_port, parse_request, serve_cli
from chatft.deploy import reply_agreement, greedy_steps

openai = pytest.importorskip("openai")
KEY = "sk-test-key"
QUESTIONS = ["decline a meeting about the boiler nicely", "name three fruits", "hi", "write a haiku about tea"]
MULTI = [dict(role="user", content="hi"), dict(role="assistant", content="Hello! How can I help?"),
         dict(role="user", content="name three fruits")]

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    "A TINY_MODEL run folder (2 training steps: enough to have an adapter)."
    return practice_run(tmp_path_factory.mktemp("serve")/"run", TINY_MODEL, steps=2, n=8, max_length=128)

@pytest.fixture(scope="module")
def chat(tiny_run): return load_chat(tiny_run, device="cpu", merged=True)

@pytest.fixture(scope="module")
def engine(chat):
    e = Engine(chat, max_batch=4).start()
    yield e
    e.stop()

# --- request checking ---

def body(**kw): return dict(dict(model="m", messages=[dict(role="user", content="hi")]), **kw)

@pytest.mark.parametrize("kw, param", [
    (dict(temperature=5), "temperature"), (dict(top_p=0), "top_p"), (dict(max_tokens=0), "max_tokens"),
    (dict(max_completion_tokens=10**6), "max_completion_tokens"), (dict(n=3), "n"), (dict(stop=["a"]*5), "stop"),
    (dict(messages=[]), "messages"), (dict(messages=[dict(role="tool", content="x")]), "messages.0.role"),
    (dict(messages=[dict(role="user", content=[dict(type="image_url")])]), "messages.0.content"),
    (dict(messages=[dict(role="user", content="a"), dict(role="assistant", content="b")]), "messages"),
    (dict(seed="7"), "seed"), (dict(tools=[dict(type="function")]), "tools"), (dict(logprobs=True), "logprobs"),
    (dict(frequency_penalty=0.5), "frequency_penalty"),
    (dict(response_format=dict(type="json_object")), "response_format")])
def test_bad_requests_name_the_field(kw, param):
    with pytest.raises(ApiError) as e: parse_request(body(**kw))
    assert e.value.status == 400 and e.value.body()["error"]["param"] == param

def test_request_fields():
    a = parse_request(body(max_tokens=9, temperature=0.5, top_p=0.9, seed=3, stop="x", stream=True,
                           stream_options=dict(include_usage=True),
                           messages=[dict(role="developer", content="Be brief."), dict(role="user", content="hi")]))
    assert (a.max_tokens, a.temperature, a.top_p, a.seed, a.stop, a.stream, a.include_usage) == (9, 0.5, 0.9, 3, ("x",), True, True)
    assert a.messages[0] == dict(role="system", content="Be brief.")
    assert parse_request(body()).max_tokens == Limits().default_tokens
    assert parse_request(body(presence_penalty=0, logprobs=False, response_format=dict(type="text"))).messages
    with pytest.raises(ApiError, match="4 messages"): parse_request(body(messages=[dict(role="user", content="x")]*4), Limits(max_messages=3))

# Any JSON at all, and bodies with the right keys holding any JSON: `parse_request` answers with an `Ask` or a 4xx
# `ApiError`, never anything else (which the server would answer with a 500).
from hypothesis import given, settings, HealthCheck, strategies as st
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)
FIELDS = ["messages", "model", "max_tokens", "max_completion_tokens", "temperature", "top_p", "seed", "stop",
          "stream", "stream_options", "n", "tools", "logprobs", "response_format", "presence_penalty", "top_k"]
MESSAGE = st.fixed_dictionaries({}, optional=dict(role=st.sampled_from(["user", "assistant", "system", "developer",
                                                                        "tool"]) | JSON, content=JSON, name=JSON))
BODIES = JSON | st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=6) | st.fixed_dictionaries(
    dict(messages=st.lists(MESSAGE, max_size=4)), optional={k: JSON for k in FIELDS if k != "messages"})

@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(BODIES)
def test_any_body_is_an_ask_or_a_4xx(b):
    try: parse_request(b, Limits(max_messages=3))
    except ApiError as e: assert 400 <= e.status < 500 and e.body()["error"]["message"], e.status

# --- the engine against Chat.reply ---

def agree(reference, prompts:list, replies:list, tokens:int, steps=None):
    "Greedy replies computed another way (batched, served) agree with `reference`'s: the same, or parting at a near tie."
    table = reply_agreement(reference, prompts, replies, tokens, steps=steps)
    assert table.ok.all(), table.to_string()

def test_batched_greedy_equals_single(engine, chat, tiny_run):
    "Greedy replies generated together agree with `Chat.reply`'s, merged as served and with the adapter unmerged."
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda q: engine.reply(q, max_tokens=12, temperature=0), QUESTIONS + [MULTI]))
    agree(chat, QUESTIONS + [MULTI], together, 12)
    agree(load_chat(tiny_run, device="cpu"), QUESTIONS + [MULTI], together, 12)
    assert engine.mean_batch > 1

def test_seeded_sampling_equals_chat_and_ignores_neighbours(engine, chat):
    kw = dict(temperature=0.9, top_p=0.95, seed=11)
    expected = chat.reply(QUESTIONS[0], max_new_tokens=12, **kw)
    with ThreadPoolExecutor(3) as pool:
        runs = [pool.submit(engine.reply, QUESTIONS[0], max_tokens=12, **kw)] + \
               [pool.submit(engine.reply, q, max_tokens=12, temperature=1.0) for q in QUESTIONS[1:3]]
        got = runs[0].result()
    assert got == expected
    assert engine.reply(QUESTIONS[0], max_tokens=12, **dict(kw, seed=12)) != expected

def test_cancelled_job_leaves_the_batch(engine):
    before = engine.stats["cancelled"]
    job = engine.submit(engine.job(Ask([dict(role="user", content="hi")], max_tokens=1000, temperature=0)))
    while not job.tokens: time.sleep(0.01)
    job.cancelled.set()
    deadline = time.time() + 30
    while engine.rows and time.time() < deadline: time.sleep(0.05)
    assert not engine.rows and len(job.tokens) < 1000 and engine.stats["cancelled"] == before + 1

def test_a_failing_request_gets_an_error_and_the_engine_goes_on(engine):
    import queue
    events = queue.Queue()
    engine.submit(Job([10**9], max_tokens=4, send=events.put))      # a token id the model does not have
    assert "generation failed" in events.get(timeout=60)["error"]
    assert engine.reply("hi", max_tokens=3, temperature=0)

def test_engine_needs_a_batch(chat):
    from chatft.core import ChatftError
    with pytest.raises(ChatftError, match="at least 1"): Engine(chat, max_batch=0)

def test_vllm_engine_says_what_it_needs(tiny_run):
    import torch
    if torch.cuda.is_available(): pytest.skip("this machine has CUDA")
    r = subprocess.run([str(Path(sys.executable).parent/"chatft"), "serve", str(tiny_run), "--engine", "vllm"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "needs an NVIDIA GPU" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()[-1]) > 40

# --- the real server ---

@pytest.fixture(scope="module")
def server(tiny_run):
    "`chatft serve` started through the console script, with an API key; yields (process, base url)."
    proc, url = chatft_server(tiny_run, "--api-key", KEY, "--max-batch", "8", "--max-tokens", "4000")
    yield proc, url
    if proc.poll() is None:
        proc.kill()
        proc.wait()

@pytest.fixture(scope="module")
def client(server): return openai.OpenAI(base_url=server[1]+"/v1", api_key=KEY, max_retries=0, timeout=120)

def ask(client, messages, **kw):
    msgs = [dict(role="user", content=messages)] if isinstance(messages, str) else messages
    return client.chat.completions.create(model="run", messages=msgs, **dict(dict(max_tokens=16, temperature=0), **kw))

def streamed(client, messages, **kw)->tuple:
    "(text, finish reason, usage) of a streamed reply."
    text, finish, usage = "", None, None
    for c in ask(client, messages, stream=True, stream_options=dict(include_usage=True), **kw):
        if c.usage: usage = c.usage
        if c.choices:
            text += c.choices[0].delta.content or ""
            finish = c.choices[0].finish_reason or finish
    return text, finish, usage

@pytest.mark.slow
def test_server_answers_like_chat(client, chat):
    assert [m.id for m in client.models.list()] == ["run"]
    r = ask(client, QUESTIONS[1])
    agree(chat, [QUESTIONS[1]], [r.choices[0].message.content], 16)
    assert r.object == "chat.completion" and r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens == len(chat.prompt(QUESTIONS[1], 16)) and 0 < r.usage.completion_tokens <= 16
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    text, finish, usage = streamed(client, QUESTIONS[1])
    assert (text, finish, usage.completion_tokens) == (r.choices[0].message.content, r.choices[0].finish_reason,
                                                       r.usage.completion_tokens)

@pytest.mark.slow
def test_server_multi_turn_and_system(client, chat):
    with_system = [dict(role="system", content="You answer in French.")] + MULTI
    agree(chat, [MULTI, with_system], [ask(client, m).choices[0].message.content for m in (MULTI, with_system)], 16)

@pytest.mark.slow
def test_server_stop(client):
    full = ask(client, QUESTIONS[0], max_tokens=24).choices[0].message.content
    word = full[len(full)//2:len(full)//2+3]
    cut = ask(client, QUESTIONS[0], max_tokens=24, stop=[word])
    assert cut.choices[0].message.content == full[:full.index(word)] and cut.choices[0].finish_reason == "stop"
    assert streamed(client, QUESTIONS[0], max_tokens=24, stop=word)[0] == full[:full.index(word)]

@pytest.mark.slow
def test_server_bad_requests(client, server):
    import httpx
    with pytest.raises(openai.BadRequestError) as e: ask(client, "hi", temperature=5)
    assert e.value.status_code == 400 and e.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError): ask(client, "hi", n=2)
    with pytest.raises(openai.BadRequestError): ask(client, "hi", max_tokens=100_000)
    with pytest.raises(openai.BadRequestError) as e: ask(client, "word " * 20_000, max_tokens=8)
    assert e.value.code == "context_length_exceeded"
    auth = {"Authorization": f"Bearer {KEY}"}
    r = httpx.post(server[1]+"/v1/chat/completions", content=b"{not json", headers=auth)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.post(server[1]+"/v1/chat/completions", content=b"[" * 50_000 + b"]" * 50_000, headers=auth)
    assert r.status_code == 400 and "nested too deeply" in r.json()["error"]["message"]   # was a 500 RecursionError
    r = httpx.post(server[1]+"/v1/chat/completions", content=b" " * 2_000_000, headers=auth)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    r = httpx.get(server[1]+"/v1/nothing", headers=auth)
    assert r.status_code == 404 and "message" in r.json()["error"]

@pytest.mark.slow
def test_server_api_key(server):
    bad = openai.OpenAI(base_url=server[1]+"/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e: ask(bad, "hi")
    assert e.value.status_code == 401 and e.value.body["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError): bad.models.list()
    import httpx
    assert httpx.post(server[1]+"/v1/chat/completions", json=body()).status_code == 401
    assert httpx.get(server[1]+"/health").json()["status"] == "ok"

@pytest.mark.slow
def test_server_survives_a_disconnect(client, server):
    import httpx
    before = httpx.get(server[1]+"/health").json()
    stream = ask(client, QUESTIONS[0], max_tokens=1900, stream=True)
    for i, _ in enumerate(stream):
        if i == 3: break
    stream.close()
    deadline = time.time() + 60
    while time.time() < deadline and httpx.get(server[1]+"/health").json()["running"]: time.sleep(0.1)
    health = httpx.get(server[1]+"/health").json()
    # the job was dropped because its client left, before its 1900 tokens (how many it made depends on the CPU)
    assert health["running"] == 0 and health["waiting"] == 0 and health["cancelled"] == before["cancelled"] + 1
    assert health["steps"] - before["steps"] < 1900
    assert ask(client, "hi", max_tokens=4).choices[0].message.content

@pytest.mark.slow
def test_server_frees_a_non_streamed_request_whose_client_left(client, server):
    import httpx
    before = httpx.get(server[1]+"/health").json()
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=1.5).chat.completions.create(
            model="run", messages=[dict(role="user", content="hi")], max_tokens=1900, temperature=0)
    deadline = time.time() + 60
    while time.time() < deadline and httpx.get(server[1]+"/health").json()["running"]: time.sleep(0.1)
    health = httpx.get(server[1]+"/health").json()
    assert health["running"] == 0 and health["cancelled"] == before["cancelled"] + 1
    assert health["steps"] - before["steps"] < 1900

@pytest.mark.slow
def test_server_concurrent_clients(server, chat):
    "8 clients x 4 requests at once: no failure, every greedy reply agrees with `Chat.reply`'s, forward passes shared."
    import httpx
    before = httpx.get(server[1]+"/health").json()
    def one_client(i):
        c = openai.OpenAI(base_url=server[1]+"/v1", api_key=KEY, max_retries=0, timeout=300)
        out = []
        for j in range(4):
            q = QUESTIONS[(i + j) % 4]
            out.append((q, streamed(c, q)[0] if j % 2 else ask(c, q).choices[0].message.content))
        return out
    with ThreadPoolExecutor(8) as pool: results = [r for rs in pool.map(one_client, range(8)) for r in rs]
    assert len(results) == 32
    steps = {q: greedy_steps(chat, q, 16) for q in QUESTIONS}
    agree(chat, [q for q, _ in results], [text for _, text in results], 16, steps=[steps[q] for q, _ in results])
    after = httpx.get(server[1]+"/health").json()
    steps, rows = after["steps"] - before["steps"], after["rows"] - before["rows"]
    assert rows / steps > 2, (rows, steps)     # requests shared forward passes

@pytest.mark.slow
def test_server_refuses_beyond_max_waiting(chat):
    """One running, one waiting (`max_waiting=1`): the next request gets a 429 at once with `Retry-After`, /health
    answers at once; when the waiting client leaves, its place is free again; the refused client can come back."""
    import httpx
    from chatft.serve import Server, serve_app
    srv = Server(serve_app(Engine(chat, max_batch=1, max_waiting=1), limits=Limits(max_tokens=4000)))
    health = lambda: httpx.get(srv.url.removesuffix("/v1")+"/health", timeout=5).json()
    try:
        c = openai.OpenAI(base_url=srv.url, api_key="x", max_retries=0, timeout=120)
        running = ask(c, QUESTIONS[0], max_tokens=1900, stream=True)
        next(iter(running))
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(ask, c, "hi", max_tokens=4)
            deadline = time.time() + 30
            while health()["waiting"] < 1 and time.time() < deadline: time.sleep(0.05)
            t = time.time()
            r = httpx.post(srv.url+"/chat/completions", json=body(max_tokens=4), timeout=5)
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1, r.text
            assert r.json()["error"]["code"] == "server_busy" and "--max-waiting 1" in r.json()["error"]["message"]
            h = health()
            assert time.time() - t < 1 and (h["running"], h["waiting"], h["refused"]) == (1, 1, 1)
            with pytest.raises(openai.RateLimitError): ask(c, "hi", max_tokens=4)
            running.close()                                      # the running client leaves: the waiting one goes on
            assert waiting.result(timeout=60).choices[0].message.content is not None
        # a waiting client that leaves frees its place
        running = ask(c, QUESTIONS[0], max_tokens=1900, stream=True)
        next(iter(running))
        with pytest.raises(openai.APITimeoutError): c.with_options(timeout=1.5).chat.completions.create(
            model="run", messages=[dict(role="user", content="hi")], max_tokens=4)
        deadline = time.time() + 10
        while health()["waiting"] and time.time() < deadline: time.sleep(0.05)
        assert health()["waiting"] == 0
        running.close()
        assert ask(c, "hi", max_tokens=4).choices[0].message.content is not None
    finally: srv.stop()

@pytest.mark.slow
def test_server_stops_cleanly_on_sigterm(server, client):
    proc, _ = server
    stream = ask(client, QUESTIONS[0], max_tokens=1900, stream=True)   # a request still running
    chunks = iter(stream)
    next(chunks)
    t = time.time()
    proc.send_signal(signal.SIGTERM)
    with pytest.raises(openai.APIError, match="shutting down"):
        for _ in chunks: pass
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "chatft serve: stopped" in out
    assert time.time() - t < 15

def test_port_in_use_is_one_line(tiny_run):
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        r = subprocess.run([str(Path(sys.executable).parent/"chatft"), "serve", str(tiny_run), "--port",
                            str(taken.getsockname()[1])], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "pick another with --port" in r.stderr and "Traceback" not in r.stderr
