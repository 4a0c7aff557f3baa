"""chatft.deploy: the merged folder answers as the adapter does and loads with plain transformers; the GGUF
(converted by llama.cpp's own converter) tokenizes, renders its prompts and answers as transformers in
llama-cpp-python, and a GGUF with a wrong template or wrong weights fails that check; replies from two runtimes are
compared by `parting`'s rule (the same up to a near tie), which is tested on made-up steps too; the Modelfile's
prompt pieces rebuild the Jinja template; the Hub upload folder, card and Space; `chatft merge/gguf/push` through
the real console script. No test reaches the network: the converter comes from chatft's cache (setup.sh fetches it)
or the GGUF tests skip, saying so."""
import os, sys, json, runpy, tarfile, importlib.util, subprocess
from pathlib import Path
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
from chatft.core import ChatftError
from chatft.models import DEMO_MODEL, TINY_MODEL, load_tokenizer, model_path
from chatft.template import render, with_system
from chatft.chat import practice_run, load_chat
from chatft import deploy
from chatft.deploy import (merge, merged_chat, greedy_replies, heldout_prompts, template_pieces, assemble,
                           ollama_template, modelfile, extract_converter, converter_dir, find_converter, gguf,
                           load_gguf, gguf_replies, same_tokens, rounded_chat, upload_folder, space_folder, push,
                           hub_card, card_data, data_counts, leaks, base_license, stop_config, convert_to_gguf,
                           Steps, NEAR_TIE, greedy_steps, parting, reply_agreement, gguf_agreement)

CHATFT = str(Path(sys.executable).parent/"chatft")
TOKENS = 24

def cli(*args, env=None):
    "Run the real `chatft` console script; (returncode, stdout, stderr)."
    done = subprocess.run([CHATFT, *map(str, args)], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})
    return done.returncode, done.stdout, done.stderr

def error_lines(err:str)->list:
    "The lines chatft itself wrote to stderr (libraries may log a warning on import)."
    return [l for l in err.splitlines() if l.startswith("chatft ")]

def need_converter():
    if not (converter_dir()/"convert_hf_to_gguf.py").exists():
        pytest.skip(f"llama.cpp's converter is not cached in {converter_dir()} (tests do not download it): "
                    "run `python -c 'import chatft.deploy as d; d.fetch_converter()'` (setup.sh does)")

def need_llama_cpp():
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip(f"llama-cpp-python is not installed: `pip install llama-cpp-python=={deploy.LLAMA_CPP_VERSION}` (setup.sh does)")

@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    "A demo-model run: a few steps at lr 1e-3 change its greedy answers."
    return practice_run(tmp_path_factory.mktemp("deploy")/"run", DEMO_MODEL, steps=3, n=16, max_length=256)

@pytest.fixture(scope="module")
def merged(demo_run, tmp_path_factory):
    return merge(demo_run, tmp_path_factory.mktemp("deploy")/"merged", device="cpu")

@pytest.fixture(scope="module")
def prompts(demo_run): return heldout_prompts(demo_run, 4)

@pytest.fixture(scope="module")
def adapter_replies(demo_run, prompts): return greedy_replies(load_chat(demo_run, device="cpu"), prompts, TOKENS)

# --- fast: no run needed ---

def test_template_pieces_rebuild_the_jinja_template():
    "The Ollama template's pieces put conversations back together exactly as the Jinja template renders them."
    tok = load_tokenizer(DEMO_MODEL)
    pieces = template_pieces(tok)
    convs = [[dict(role="user", content="hi")],
             [dict(role="user", content="a {{ b }}"), dict(role="assistant", content="c\n\nd"), dict(role="user", content="e")]]
    for system in (None, "", "Be brief.\nVery."):
        for conv in convs:
            msgs = with_system(conv, system or None)
            assert assemble(pieces, msgs) == render(msgs, tok, add_generation_prompt=True)
    assert pieces["user"] == ("<|im_start|>user\n", "<|im_end|>\n") and "SmolLM" in pieces["default"]
    go = ollama_template(pieces)
    assert go.count("{{ .Content }}") == 2 and "{{ .System }}" in go and go.endswith("<|im_start|>assistant\n")

def test_template_pieces_of_a_template_that_leaves_the_system_out():
    "DialoGPT's template writes no system message: its pieces have none, and the Go template has no .System."
    from chatft.models import TINY_DIALOGPT
    tok = load_tokenizer(TINY_DIALOGPT)
    pieces = template_pieces(tok)
    assert pieces["system"] is None and pieces["user"] == pieces["assistant"] == ("", "<|endoftext|>")
    turns = [dict(role="user", content="a"), dict(role="assistant", content="b"), dict(role="user", content="c")]
    for system in (None, "Be brief."):
        msgs = with_system(turns, system)
        assert assemble(pieces, msgs) == render(msgs, tok, add_generation_prompt=True) == "a<|endoftext|>b<|endoftext|>c<|endoftext|>"
    assert ".System" not in ollama_template(pieces)

def test_template_pieces_refuse_position_dependent_templates():
    "A template that writes the first user message differently cannot be one Go template: say so, do not guess."
    tok = load_tokenizer(DEMO_MODEL)
    tok.chat_template = ("{% for m in messages %}{% if loop.index0 == 1 %}FIRST {% endif %}"
                         "<{{ m['role'] }}>{{ m['content'] }}</s>{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}")
    with pytest.raises(ValueError): template_pieces(tok)

def test_extract_converter_takes_only_the_converter(tmp_path):
    src = tmp_path/"llama_cpp_python-9.9.9/vendor/llama.cpp"
    (src/"gguf-py/gguf").mkdir(parents=True)
    (src/"conversion").mkdir()
    for f in ("convert_hf_to_gguf.py", "gguf-py/gguf/__init__.py", "conversion/__init__.py", "LICENSE", "ggml.c"):
        (src/f).write_text("# " + f)
    with tarfile.open(tmp_path/"sd.tar.gz", "w:gz") as tf: tf.add(tmp_path/"llama_cpp_python-9.9.9", "llama_cpp_python-9.9.9")
    conv = extract_converter(tmp_path/"sd.tar.gz", tmp_path/"out")
    assert conv == tmp_path/"out/convert_hf_to_gguf.py"
    assert sorted(p.name for p in conv.parent.iterdir()) == ["LICENSE", "conversion", "convert_hf_to_gguf.py", "gguf-py"]

def test_find_converter_without_network(tmp_path, monkeypatch):
    "With an empty cache and fetching off, a one-line error says how to get it; $CHATFT_LLAMA_CPP is honoured."
    monkeypatch.setenv("CHATFT_CACHE", str(tmp_path))
    with pytest.raises(ChatftError, match="fetch_converter"): find_converter(fetch=False)
    (tmp_path/"checkout").mkdir()
    monkeypatch.setenv("CHATFT_LLAMA_CPP", str(tmp_path/"checkout"))
    with pytest.raises(ChatftError, match="does not exist"): find_converter()
    (tmp_path/"checkout/convert_hf_to_gguf.py").write_text("")
    assert find_converter() == tmp_path/"checkout/convert_hf_to_gguf.py"

def test_parting_accepts_only_a_near_tie_onto_the_runner_up():
    """The rule on made-up steps: identical agrees; parting at a near tie onto the reference's runner-up agrees; parting
    where the reference is sure, or onto a token that is neither of its top two, differs."""
    end = deploy._END
    s = Steps(prompt=[1], ids=[10, 11, 12, 2], text=["Hello", "Hello there", "Hello there!", "Hello there!" + end],
              runner_ids=[20, 21, 22, 23], runner=["Hi", "Hello,", "Hello there.", "Hello there! How"],
              margin=[3.0, 0.05, 1.5, 0.02])
    v = lambda reply, **kw: parting(s, reply, **kw)
    assert v("Hello there!") == dict(agreed=4, of=4, margin=None, verdict="same", why="identical")
    verdict = lambda reply: (v(reply)["verdict"], v(reply)["agreed"], v(reply)["margin"])
    assert verdict("Hello, world") == ("near tie", 1, 0.05)               # took the runner-up at a near tie
    assert verdict("Hello there! How are you") == ("near tie", 3, 0.02)    # went on where the reference ended, nearly
    sure = v("Hello there. Bye")
    assert (sure["verdict"], sure["agreed"], sure["margin"]) == ("differs", 2, 1.5) and "sure" in sure["why"]
    assert v("Hi")["verdict"] == "differs" and v("Hi")["agreed"] == 0
    other = v("Hello friend")                                  # a near tie, but not onto the runner-up
    assert (other["verdict"], other["agreed"]) == ("differs", 1) and "neither" in other["why"]
    assert v("Hello")["verdict"] == "differs"               # stopped where the reference was not near its end
    assert v("Hello there! Bye")["verdict"] == "differs"    # went on past the reference's end, not with its runner-up
    assert v("Hello, world", near_tie=0.01)["verdict"] == "differs"
    cut = Steps([1], [10, 11], ["Hello", "Hello there"], [20, 21], ["Hi", "Hello,"], [3.0, 0.05])   # stopped by length
    assert parting(cut, "Hello there")["verdict"] == "same"
    assert parting(cut, "Hello there and on")["verdict"] == "differs"
    half = Steps([1], [10, 11], ["caf\ufffd", "café"], [20, 21], ["cab", "cafe"], [2.0, 0.05])   # é is two tokens
    assert parting(half, "café")["verdict"] == "same" and parting(half, "cafe")["verdict"] == "near tie"
    # a lone byte piece (no character): transformers writes '\ufffd', llama.cpp nothing; the rest must still agree
    lone = Steps([1], [10, 11, 12], ["a", "a\ufffd", "a\ufffd b"], [20, 21, 22], ["x", "ay", "a\ufffd c"], [2.0, 2.0, 2.0])
    assert parting(lone, "a b")["verdict"] == "same" and parting(lone, "a c")["verdict"] == "differs"

@pytest.mark.slow
def test_a_failed_merge_leaves_nothing(demo_run, tmp_path):
    "A run whose adapter weights are damaged: merge fails in one line, and neither the folder nor a part of it is left."
    import shutil
    bad = Path(shutil.copytree(demo_run, tmp_path/"bad"))
    (bad/"adapter_model.safetensors").write_bytes(b"\0" * 100)
    with pytest.raises(ChatftError, match="the run folder is broken .SafetensorError"): merge(bad, tmp_path/"merged", device="cpu")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad"]
    (tmp_path/"kept").mkdir(); (tmp_path/"kept"/"mine.txt").write_text("x")
    with pytest.raises(ChatftError): merge(bad, tmp_path/"kept", device="cpu", overwrite=True)
    assert [p.name for p in (tmp_path/"kept").iterdir()] == ["mine.txt"]           # --overwrite replaces only on success

def test_base_license():
    assert base_license(DEMO_MODEL) == "apache-2.0"
    assert base_license("meta-llama/Llama-3.1-8B-Instruct") == "llama3.1"
    assert base_license("someone/unknown") == "other"

def test_cli_bad_input_is_one_line(tmp_path):
    for args, msg in [(("merge", tmp_path/"nope", "-o", tmp_path/"m"), "not a chatft run folder"),
                      (("gguf", tmp_path/"nope", "-o", tmp_path/"m.gguf"), "not a chatft run folder"),
                      (("push", tmp_path/"nope", "me/x"), "not a chatft run folder")]:
        code, out, err = cli(*args)
        assert code == 1 and len(error_lines(err)) == 1 and msg in error_lines(err)[0], err
    code, out, err = cli("gguf", tmp_path, "-o", tmp_path/"m.gguf", "--type", "q4_0")
    assert code == 2 and "invalid choice" in err

# --- slow: a demo run ---

@pytest.mark.slow
def test_load_chat_reads_a_merged_folders_system_prompt(merged, tmp_path):
    "`chatft chat merged/` and `chatft serve merged/` (`load_chat`) use the system prompt `merge` wrote down."
    for f in merged.iterdir(): (tmp_path/f.name).symlink_to(f)
    (tmp_path/"chatft.json").unlink()
    (tmp_path/"chatft.json").write_text(json.dumps(dict(json.loads((merged/"chatft.json").read_text()), system="Be brief.")))
    assert load_chat(tmp_path, device="cpu").system == merged_chat(tmp_path, "cpu").system == "Be brief."

@pytest.mark.slow
def test_merged_equals_adapter(demo_run, merged, prompts):
    "Greedy replies of the merged folder (plain from_pretrained) agree with the adapter's on held-out prompts (`parting`)."
    from transformers import AutoModelForCausalLM, AutoTokenizer
    adapter = load_chat(demo_run, device="cpu")
    steps = [greedy_steps(adapter, p, TOKENS) for p in prompts]
    from_merged = greedy_replies(merged_chat(merged, "cpu"), prompts, TOKENS)
    table = reply_agreement(adapter, prompts, from_merged, TOKENS, steps=steps)
    assert table.ok.all(), table.to_string()
    assert load_chat(merged, device="cpu").system == json.loads((merged/"chatft.json").read_text())["system"]
    model = AutoModelForCausalLM.from_pretrained(merged)
    assert not hasattr(model, "peft_config") and "quantization_config" not in json.loads((merged/"config.json").read_text())
    tok, run_tok = AutoTokenizer.from_pretrained(merged), AutoTokenizer.from_pretrained(demo_run)
    assert tok.chat_template == run_tok.chat_template
    assert tok.convert_tokens_to_ids("<|im_end|>") in model.generation_config.eos_token_id
    base = greedy_replies(load_chat(DEMO_MODEL, device="cpu"), prompts, TOKENS)
    assert not reply_agreement(adapter, prompts, base, TOKENS, steps=steps).ok.all(), "the base model passes the check"

@pytest.mark.slow
def test_plain_generate_stops_at_end_of_turn(merged):
    "Plain `generate` on the merged folder, with no chatft at all, stops at <|im_end|>."
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    model, tok = AutoModelForCausalLM.from_pretrained(merged), AutoTokenizer.from_pretrained(merged)
    ids = tok.apply_chat_template([dict(role="user", content="hi")], add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**ids, max_new_tokens=200, do_sample=False)[0, ids["input_ids"].shape[1]:]
    assert out[-1].item() == tok.convert_tokens_to_ids("<|im_end|>") and len(out) < 200

@pytest.mark.slow
def test_qlora_adapter_merges_into_the_dequantized_base(demo_run, tmp_path, prompts):
    "A QLoRA run merges into the 4-bit base dequantized: its replies are those of the 4-bit base + adapter."
    pytest.importorskip("bitsandbytes")
    import shutil, torch
    from peft import PeftModel
    from chatft.chat import Chat
    from chatft.train import TrainPlan
    run = tmp_path/"qrun"
    shutil.copytree(demo_run, run, ignore=shutil.ignore_patterns("checkpoints", "data"))
    plan = TrainPlan.load(run/"plan.json")
    plan.method = "qlora"
    plan.save(run/"plan.json")
    try: base = deploy._dequantized_base(plan, torch.float32, "cpu")
    except Exception as e: pytest.skip(f"bitsandbytes cannot load 4-bit weights on this CPU ({type(e).__name__}: {e})"[:300])
    out = merge(run, tmp_path/"qmerged", device="cpu")
    from chatft.core import Run
    trained = Chat(PeftModel.from_pretrained(base, run).eval(), load_tokenizer(run), system=Run(run).system)
    table = reply_agreement(trained, prompts[:2], greedy_replies(merged_chat(out, "cpu"), prompts[:2], TOKENS), TOKENS)
    assert table.ok.all(), table.to_string()
    from transformers import AutoModelForCausalLM
    from chatft.train import load_run
    q_proj = lambda m: m.model.layers[0].self_attn.q_proj.weight
    into_original = load_run(demo_run, merged=True)[0]
    assert not torch.allclose(q_proj(AutoModelForCausalLM.from_pretrained(out)), q_proj(into_original), atol=1e-4)

@pytest.mark.slow
def test_card_and_upload_folder_hold_no_content(demo_run, tmp_path):
    from huggingface_hub import ModelCard
    up = upload_folder(demo_run, tmp_path/"up", "adapter", "me/model")
    card = ModelCard.load(up/"README.md")
    assert card.data.to_dict() == card_data(demo_run, "adapter").to_dict()
    assert card.data.license == "apache-2.0" and card.data.base_model == DEMO_MODEL and card.data.library_name == "peft"
    everything = "".join(p.read_text() for p in up.iterdir() if p.suffix in (".json", ".md", ".txt"))
    assert leaks(everything, demo_run) == []
    report = json.loads((demo_run/"data_report.json").read_text())
    ids = [s["id"] for r in report for s in r["skipped"]]
    if ids: assert leaks(everything + ids[0], demo_run) == [ids[0]]
    assert "train conversations" in card.content and "not evaluated" in card.content
    assert not (up/"system.txt").exists() and not (up/"data").exists()

@pytest.mark.slow
def test_card_carries_the_evaluation(demo_run, tmp_path):
    import shutil
    run = tmp_path/"run"
    shutil.copytree(demo_run, run, ignore=shutil.ignore_patterns("checkpoints", "data"))
    (run/"eval.json").write_text(json.dumps(dict(settings=dict(n=7), summary={"chrf": dict(base=10.0, tuned=12.5)},
                                                 examples=[dict(prompt="SECRET PROMPT", tuned="SECRET REPLY")])))
    text = hub_card(run, "merged", "me/model").content
    assert "| chrf | 10 | 12.5 |" in text and "On 7 held-out" in text and "SECRET" not in text

@pytest.mark.slow
def test_uploaded_adapter_and_space_answer_as_the_run(demo_run, tmp_path, prompts, adapter_replies):
    "The adapter folder loads with `load_chat` (a run folder for chatft) and the Space's app.py builds the chat app on it."
    up = upload_folder(demo_run, tmp_path/"up", "adapter", "me/model")          # no system prompt unless asked: it can be private
    assert not (up/"system.txt").exists()
    unprompted = greedy_replies(load_chat(demo_run, system="", device="cpu"), prompts[:2], TOKENS)
    assert greedy_replies(load_chat(up, device="cpu"), prompts[:2], TOKENS) == unprompted
    up2 = upload_folder(demo_run, tmp_path/"up2", "adapter", "me/model", system=True)
    assert greedy_replies(load_chat(up2, device="cpu"), prompts[:2], TOKENS) == adapter_replies[:2]
    space = space_folder("me/model", tmp_path/"space")
    os.environ["CHATFT_MODEL"] = str(up)
    try: app = runpy.run_path(str(space/"app.py"), run_name="space")["load"]()
    finally: del os.environ["CHATFT_MODEL"]
    assert type(app).__name__ == "Blocks"
    from huggingface_hub import SpaceCard
    assert SpaceCard.load(space/"README.md").data.sdk == "gradio"

@pytest.mark.slow
def test_cli_merge_and_push(demo_run, tmp_path):
    code, out, err = cli("merge", demo_run, "-o", tmp_path/"m")
    assert code == 0 and (tmp_path/"m/model.safetensors").exists(), err
    code, out, err = cli("merge", demo_run, "-o", tmp_path/"m")
    assert code == 1 and len(error_lines(err)) == 1 and "not empty" in err
    code, out, err = cli("push", demo_run, "me/model", "--dry-run", "-o", tmp_path/"p", "--space")
    assert code == 0 and "dry run" in out and (tmp_path/"p/model/README.md").exists() and (tmp_path/"p/space/app.py").exists()
    code, out, err = cli("push", demo_run, "me/model")
    assert code == 1 and len(error_lines(err)) == 1 and "could not upload to me/model" in err, err
    code, out, err = cli("push", demo_run, "bad name!")
    assert code == 1 and "not a Hub repository name" in err

# --- slow: GGUF with llama.cpp ---

@pytest.fixture(scope="module")
def ggufs(demo_run, tmp_path_factory):
    "The run as f16 (through `chatft gguf`, the console script) and q8_0 GGUF files."
    need_converter()
    d = tmp_path_factory.mktemp("gguf")
    code, out, err = cli("gguf", demo_run, "-o", d/"model-f16.gguf", "--type", "f16")
    assert code == 0, err
    return dict(f16=d/"model-f16.gguf", q8_0=gguf(demo_run, d/"model-q8_0.gguf", "q8_0"))

@pytest.mark.slow
def test_gguf_files_and_modelfile(ggufs):
    import gguf as gguf_py
    r = gguf_py.GGUFReader(str(ggufs["f16"]))
    tpl = bytes(r.fields["tokenizer.chat_template"].parts[-1]).decode()
    assert tpl == load_tokenizer(DEMO_MODEL).chat_template
    assert ggufs["q8_0"].stat().st_size < 0.6*ggufs["f16"].stat().st_size
    mf = ggufs["f16"].with_suffix(".Modelfile").read_text()
    assert "FROM ./model-f16.gguf" in mf and 'PARAMETER stop "<|im_end|>"' in mf and "TEMPLATE" in mf
    assert "Ollama itself was not run" in mf

@pytest.fixture(scope="module")
def reference16(merged): return rounded_chat(merged)

@pytest.fixture(scope="module")
def steps16(reference16, prompts): return [greedy_steps(reference16, p, TOKENS) for p in prompts]

@pytest.mark.slow
def test_gguf_tokenizes_and_answers_as_transformers(ggufs, merged, prompts, reference16, steps16):
    """llama.cpp: the same token ids on held-out texts and, from the embedded template, on the chat prompts; f16 greedy
    chat replies agree with transformers' on the same rounded weights (identical, or parting at a near tie)."""
    need_llama_cpp()
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(merged)
    facts = json.loads((merged/"chatft.json").read_text())
    texts = [render(with_system(p, facts["system"]), tok, add_generation_prompt=True) for p in prompts]
    texts += ["naïve café 東京 🙂\ttabs  and\n\nnewlines", "def f(x):\n    return x ** 2  # 100%", "  leading spaces",
              "<|im_start|>user\nhi<|im_end|>"]
    llm = load_gguf(ggufs["f16"])
    table = same_tokens(llm, tok, texts)
    assert table.same.all(), table
    check = gguf_agreement(llm, reference16, prompts, TOKENS, steps=steps16)
    assert check.same_prompt.all() and check.ok.all(), check.to_string()
    q8 = gguf_agreement(load_gguf(ggufs["q8_0"]), reference16, prompts, TOKENS, steps=steps16)
    print(f"q8_0 (reported, not required): {q8.ok.sum()}/{len(q8)} agree, {(q8.verdict == 'same').sum()} identical")

# another model family's template (Zephyr's): what a converter that guessed the template would embed
WRONG_TEMPLATE = ("{% for message in messages %}{{'<|' + message['role'] + '|>\n' + message['content'] + '</s>\n'}}{% endfor %}"
                  "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}")

@pytest.mark.slow
def test_gguf_with_another_template_fails(ggufs, prompts, reference16, steps16, tmp_path):
    "The f16 file with another family's template embedded (Zephyr's): every prompt differs, and so the check fails."
    need_llama_cpp()
    out = tmp_path/"chatml.gguf"
    done = subprocess.run([sys.executable, "-m", "gguf.scripts.gguf_new_metadata", str(ggufs["f16"]), str(out),
                           "--chat-template", WRONG_TEMPLATE, "--force"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    check = gguf_agreement(load_gguf(out), reference16, prompts, TOKENS, steps=steps16)
    assert not check.same_prompt.any() and not check.ok.any(), check.to_string()
    assert set(check.why) == {"the GGUF's template gives another prompt"}

@pytest.mark.slow
def test_gguf_of_the_base_model_fails(prompts, reference16, steps16, tmp_path):
    """A GGUF of the base model (the adapter left out) against the tuned reference: the same prompts, and replies that
    part where the reference is sure (margins well above NEAR_TIE, so no CPU's rounding decides this test)."""
    need_converter(); need_llama_cpp()
    base = convert_to_gguf(model_path(DEMO_MODEL), tmp_path/"base-f16.gguf", "f16")
    check = gguf_agreement(load_gguf(base), reference16, prompts, TOKENS, steps=steps16)
    assert check.same_prompt.all() and not check.ok.all(), check.to_string()
    failed = check[~check.ok]
    assert (failed.margin > 2*NEAR_TIE).all() and failed.why.str.contains("sure").all(), check.to_string()

def test_parting_sees_a_runner_up_that_extends_the_top_token():
    "' an' after ' a' (the runner-up's text goes on from the top token's): taking it is a near tie at that step."
    from chatft.deploy import Steps, parting
    s = Steps([1], [10, 11], [" a", " a cat"], [12, 13], [" an", " a dog"], [0.01, 3.0])
    assert parting(s, " an apple")["verdict"] == "near tie"
    assert (parting(s, " an apple")["agreed"], parting(s, " a dog")["agreed"]) == (0, 1)
    assert parting(s, " a dog")["verdict"] == "differs" and parting(s, " a cat")["verdict"] == "same"
