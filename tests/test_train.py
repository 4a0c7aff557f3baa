"""Training with the tiny random model: loss goes down, only trained tokens carry loss, end-of-turn is
learned, a killed run resumes to the same weights, QLoRA runs on the CPU, and a 2-process run saves once."""
import os, sys, json, time, signal, shutil, subprocess
from pathlib import Path
import pytest, torch
from chatft.export import Conversation, write_jsonl
from chatft.models import TINY_MODEL, load_tokenizer
from chatft.dataset import prepare, pack, PackedCollator
from chatft.train import plan_training, train, load_run, answer, heldout_loss, last_checkpoint, load_for_training

CHATFT = str(Path(sys.executable).parent/"chatft")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}

def convs(n=12, reply="ok, noted."):
    "A small memorisable set: every reply is the same short text."
    return [Conversation(id=f"c{i}", create_time=1.7e9+i, messages=[{"role": "user", "content": f"note number {i}"},
                                                                     {"role": "assistant", "content": reply}]) for i in range(n)]

@pytest.fixture(scope="module")
def tok(): return load_tokenizer(TINY_MODEL)

@pytest.fixture(scope="module")
def dsd(tok): return prepare(convs(), tok, max_length=128, test_size=0.25)[0]

# the tiny model's tied embeddings are random and tiny, so its logits can barely move through the decoder layers
# alone: an adapter on lm_head too gives it the capacity to learn the set (real models don't need this)
TINY_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head"]

def tiny_plan(dsd, **kw):
    o = dict(target_modules=TINY_TARGETS, max_length=128, lr=2e-2, max_steps=80, lora_dropout=0.0, grad_accum=1, warmup_ratio=0.0, lr_scheduler="constant",
             eval_steps=40, save_steps=40, logging_steps=1)
    return plan_training(TINY_MODEL, dsd, **{**o, **kw})

def test_loss_goes_down_and_run_loads(dsd, tok, tmp_path):
    tr = train(tiny_plan(dsd), dsd, tmp_path/"run", tokenizer=tok, live=False)
    losses = [h["loss"] for h in tr.state.log_history if "loss" in h]
    assert sum(losses[-5:])/5 < 0.3*losses[0], losses
    for f in ["adapter_model.safetensors", "adapter_config.json", "plan.json", "loss.png", "README.md", "data_report.json", "chat_template.jinja"]:
        assert (tmp_path/"run"/f).exists(), f
    model, tok2, plan = load_run(tmp_path/"run")
    assert tok2.chat_template == tok.chat_template and plan.model == TINY_MODEL
    # end of turn: the tuned model says the reply and stops; the random base does not produce <|im_end|>
    ids = tok2.apply_chat_template([{"role": "user", "content": "note number 99"}], add_generation_prompt=True, return_tensors="pt", return_dict=True)
    end = tok2.convert_tokens_to_ids("<|im_end|>")
    tuned = model.generate(**ids, max_new_tokens=12, do_sample=False, eos_token_id=None, pad_token_id=end)[0, ids["input_ids"].shape[1]:].tolist()
    with model.disable_adapter():
        base = model.generate(**ids, max_new_tokens=12, do_sample=False, eos_token_id=None, pad_token_id=end)[0, ids["input_ids"].shape[1]:].tolist()
    assert end in tuned and end not in base, (tok2.decode(tuned), tok2.decode(base))
    assert tok2.decode(tuned[:tuned.index(end)]).strip() == "ok, noted."

def test_only_trained_tokens_carry_loss(dsd, tok):
    "The gradient of the loss reaches the logits only at positions whose next token is trained."
    plan = tiny_plan(dsd)
    model = load_for_training(plan, verbose=False)
    ds = pack(dsd["train"], 128)
    batch = PackedCollator(tok.pad_token_id)([ds[0]])
    out = model(**{k: v for k, v in batch.items() if k != "labels"})
    logits = out.logits; logits.retain_grad()
    loss = model.loss_function(logits, batch["labels"], vocab_size=logits.shape[-1])
    loss.backward()
    has_grad = logits.grad[0].abs().sum(-1) > 0
    trained_next = torch.zeros_like(has_grad); trained_next[:-1] = batch["labels"][0, 1:] != -100
    assert torch.equal(has_grad, trained_next)
    assert 0 < trained_next.sum() < len(trained_next)/2   # the context (user turns, template) is most of it

def test_qlora_on_cpu(dsd, tok, tmp_path):
    pytest.importorskip("bitsandbytes")
    plan = tiny_plan(dsd, method="qlora", max_steps=2, eval_steps=2, save_steps=2)
    tr = train(plan, dsd, tmp_path/"qrun", tokenizer=tok, live=False)
    assert tr.state.global_step == 2 and (tmp_path/"qrun"/"adapter_model.safetensors").exists()
    assert "Linear4bit" in {type(m).__name__ for m in tr.model.modules()}

def _adapter(run):
    from safetensors.torch import load_file
    return load_file(str(Path(run)/"adapter_model.safetensors"))

def _train_cmd(data, out, *extra):
    return [CHATFT, "train", str(data), "--model", TINY_MODEL, "-o", str(out), "--max-steps", "16", "--save-steps", "4",
            "--eval-steps", "8", "--lr", "5e-3", "--max-length", "128", "--grad-accum", "1", *extra]

def test_resume_after_kill(tmp_path):
    data = write_jsonl(convs(16), tmp_path/"data.jsonl")
    full = subprocess.run(_train_cmd(data, tmp_path/"full"), env=ENV, capture_output=True, text=True)
    assert full.returncode == 0, full.stderr[-3000:]
    p = subprocess.Popen(_train_cmd(data, tmp_path/"killed"), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None:
        ck = last_checkpoint(tmp_path/"killed")
        if ck is not None and int(ck.name.split("-")[-1]) >= 8 and (ck/"trainer_state.json").exists(): break
        time.sleep(0.2)
    assert p.poll() is None, "the run finished before it could be killed"
    time.sleep(0.5); p.send_signal(signal.SIGKILL); p.wait()
    assert not (tmp_path/"killed"/"adapter_model.safetensors").exists()
    again = subprocess.run(_train_cmd(data, tmp_path/"killed"), env=ENV, capture_output=True, text=True)
    assert again.returncode == 1 and "--resume" in again.stderr
    res = subprocess.run(_train_cmd(data, tmp_path/"killed", "--resume"), env=ENV, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    a, b = _adapter(tmp_path/"full"), _adapter(tmp_path/"killed")
    assert a.keys() == b.keys()
    for k in a: torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-6)
    la = json.loads((tmp_path/"full"/"log_history.json").read_text()); lb = json.loads((tmp_path/"killed"/"log_history.json").read_text())
    assert abs([h for h in la if "eval_loss" in h][-1]["eval_loss"] - [h for h in lb if "eval_loss" in h][-1]["eval_loss"]) < 1e-4

@pytest.mark.slow
def test_two_processes(tmp_path):
    "The same `chatft train` under `accelerate launch` with 2 CPU processes (gloo): trains, and rank 0 alone writes the run."
    data = write_jsonl(convs(16), tmp_path/"data.jsonl")
    cmd = [str(Path(sys.executable).parent/"accelerate"), "launch", "--num_processes", "2", "--cpu", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", CHATFT, *_train_cmd(data, tmp_path/"ddp")[1:]]
    cmd[cmd.index("--max-steps")+1] = "4"
    res = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-4000:]
    run = tmp_path/"ddp"
    assert (run/"adapter_model.safetensors").exists() and (run/"plan.json").exists()
    assert res.stdout.count("run folder:") == 1                 # printed by rank 0 only
    state = json.loads((last_checkpoint(run)/"trainer_state.json").read_text())
    assert state["global_step"] == 4
    model, tok, plan = load_run(run)
