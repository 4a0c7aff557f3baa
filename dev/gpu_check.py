"""Check chatft's GPU paths on a real CUDA GPU (issue 26) and print one markdown table.

    python dev/gpu_check.py [--model M] [--steps N] [--out DIR] [--json FILE] [--dry-run]

Offline (no Hugging Face Hub: the models come from local folders), on a small synthetic export read, cleaned and
prepared by chatft's own functions, a few training steps each:
 1. t4:    a plan for a T4 (`hardware="t4"`) must pick fp16 (capability 7.5 has no bfloat16); trained in fp16 with a
           loss scaler on this GPU
 2. bf16:  the plan for this machine (`detect_hardware()`) must pick bf16 on an Ampere+ GPU (an H100); trained
 3. qlora: 4-bit NF4 base (bitsandbytes) with LoRA on it, trained
 4. early stopping: held-out loss scored every step, patience 1, a high learning rate; `why_stopped` agrees with the
           Trainer's state and the run's adapter is the best step's (`KeepBest`'s `checkpoints/best.safetensors`)
 5. merge: `chatft merge`'s function; the merged folder, loaded by plain transformers, gives the adapter's logits
 6. gguf f16: `chatft gguf RUN`'s function; llama.cpp's next token after a few prompts agrees with transformers'
           (near ties excused: two numerical stacks part there)
 7. serve: `chatft serve RUN` on 127.0.0.1 with 8 concurrent clients; every request answered; requests/s
 8. 2 GPUs: `chatft train --gpus 2` (skipped with fewer than 2 GPUs): DDP, the plan says so
 9. 2 GPUs, FSDP: `plan_training(..., gpus=2, parallel="fsdp", method="qlora")` and `train`: QLoRA sharded across two
           GPUs (the 4-bit weights stored in the compute type); the run loads (skipped with fewer than 2 GPUs)
Each path runs alone: one failing does not stop the rest. Columns: status and a one-line reason, seconds per
optimizer step (the Trainer's train_runtime / steps), peak GPU memory of this process (torch's allocator; "-" for a
path whose work runs on the CPU or in another process) and the final loss or metric. Exit code 0 when nothing
failed, 1 otherwise.

`--dry-run` runs the same paths on the CPU (CUDA hidden) with the tiny random model and 2 steps, so the script
cannot rot where CI has no GPU: the T4 plan must still say fp16 (then trains on the CPU in fp32), QLoRA runs on the
CPU, CUDA-only checks (the loss scaler, 2 GPUs) are "skipped (no CUDA: dry run)"."""
import argparse, gc, json, math, os, subprocess, sys, tempfile, time, traceback
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stdout
from dataclasses import dataclass, asdict
from pathlib import Path

CHATFT = str(Path(sys.executable).parent/"chatft")
PATHS = ["t4 fp16", "bf16", "qlora 4-bit", "early stopping", "merge", "gguf f16", "serve", "2 gpus", "2 gpus fsdp"]

class Skip(Exception): "A path that cannot run here; its message is the reason."

@dataclass
class Row:
    path:str
    status:str="fail"            # "pass", "fail" or "skipped"
    reason:str=""
    step_s:float|None=None       # seconds per optimizer step
    peak_gb:float|None=None      # peak GPU memory of this process, GB (2**30 bytes)
    final:str=""                 # the final loss or metric
    seconds:float=0.0            # wall time of the path

def check(ok, msg:str):
    "An AssertionError with `msg` unless `ok` (kept under python -O, unlike assert)."
    if not ok: raise AssertionError(msg)

def one_line(text:str, n:int=240)->str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n-3] + "..."

def env()->dict:
    "The environment for chatft's console scripts: offline, unbuffered."
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}

def cli(*args, timeout:float=600)->subprocess.CompletedProcess:
    "Run the real `chatft` console script; a failure is an AssertionError with its last stderr line."
    res = subprocess.run([CHATFT, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env())
    last = (res.stderr.strip().splitlines() or res.stdout.strip().splitlines() or ["no output"])[-1]
    check(res.returncode == 0, f"chatft {args[0]} exited {res.returncode}: {last}")
    return res

# --- the shared set-up ---

class Ctx:
    "What every path shares: options, the data, the device, and the runs trained so far."
    def __init__(self, a):
        import torch
        self.a, self.dry, self.cuda = a, a.dry_run, torch.cuda.is_available()
        self.out = Path(a.out or tempfile.mkdtemp(prefix="gpu-check-")).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.runs = {}

    def data(self):
        "A synthetic export, read, cleaned and prepared as `chatft train` does."
        from chatft.models import load_tokenizer
        from chatft.synth import synthetic_export
        from chatft.clean import read_cleaned
        from chatft.dataset import prepare
        self.tok = load_tokenizer(self.a.model)
        self.export = synthetic_export(self.out/"export", n=self.a.n, seed=0)
        convs, self.reports = read_cleaned(self.export, self.tok)
        self.dsd, rep = prepare(convs, self.tok, max_length=self.a.max_length)
        self.reports.append(rep)
        check(len(self.dsd["train"]) and len(self.dsd["test"]), f"no training or no held-out rows: {self.dsd}")

    def settings(self, **kw)->dict:
        """A short schedule for any plan: `--steps` optimizer steps of one micro-batch each, every step logged, one
        evaluation at the end, no checkpoint."""
        s = self.a.steps
        return dict(dict(max_steps=s, grad_accum=1, logging_steps=1, eval_steps=s, save_steps=10**6,
                         max_length=self.a.max_length), **kw)

    def run(self)->Path:
        "A finished run to merge, convert and serve: the bf16 path's, else another path's."
        for k in ("bf16", "early stopping", "t4 fp16"):
            if k in self.runs: return self.runs[k]
        raise Skip("no finished run: no training path passed here")

    def device(self)->str: return "cuda" if self.cuda else "cpu"

def train_run(ctx:Ctx, name:str, plan)->tuple:
    "(trainer, results) of training `plan` into `ctx.out/name`: the loss must be finite at every logged step."
    from chatft.train import train
    out = ctx.out/name.replace(" ", "-")
    tr = train(plan, ctx.dsd, out, tokenizer=ctx.tok, report=ctx.reports, overwrite=True, live=False,
               progress_bar=False)
    hist = tr.state.log_history
    losses = [h["loss"] for h in hist if "loss" in h]
    check(losses and all(math.isfinite(l) for l in losses), f"a non-finite training loss: {losses}")
    runtime = next((h["train_runtime"] for h in reversed(hist) if "train_runtime" in h), None)
    evals = [h["eval_loss"] for h in hist if "eval_loss" in h]
    final = f"loss {losses[0]:.3f} -> {losses[-1]:.3f}" + (f", held-out {evals[-1]:.3f}" if evals else "")
    ctx.runs[name] = out
    return tr, dict(step_s=runtime/max(tr.state.global_step, 1) if runtime else None, final=final,
                    fell=losses[-1] < losses[0])

# --- the paths ---

def path_t4(ctx:Ctx)->dict:
    "A T4's plan is fp16; on a GPU it trains in fp16 with a loss scaler."
    from chatft.train import plan_training
    plan = plan_training(ctx.a.model, ctx.dsd, hardware="t4", **ctx.settings())
    check(plan.precision == "fp16" and plan.device == "cuda",
          f"the T4 plan chose {plan.precision} on {plan.device} ({plan.reasons.get('precision')})")
    why = plan.reasons["precision"]
    if not ctx.cuda:
        cpu = plan_training(ctx.a.model, ctx.dsd, hardware="cpu", precision="fp32", **ctx.settings())
        tr, res = train_run(ctx, "t4 fp16", cpu)
        return dict(res, reason=f"T4 plan: fp16 ({why}); trained on the CPU in fp32 (no CUDA: dry run)")
    tr, res = train_run(ctx, "t4 fp16", plan)
    scaler = getattr(tr.accelerator, "scaler", None)
    check(scaler is not None, "fp16 training ran without a loss scaler")
    fell = "loss fell" if res["fell"] else "loss finite, did not fall"
    return dict(res, reason=f"T4 plan: fp16 ({why}); {tr.state.global_step} steps in fp16 with a loss scaler "
                            f"(scale {scaler.get_scale():g}); {fell}")

def path_bf16(ctx:Ctx)->dict:
    "The plan for this machine: bf16 on an Ampere+ GPU (fp16 on an older one, the CPU's own choice on a CPU)."
    import torch
    from chatft.train import plan_training, detect_hardware
    hw = detect_hardware()
    if ctx.cuda and hw.capability and tuple(hw.capability) >= (8, 0):
        check(hw.bf16 and torch.cuda.is_bf16_supported(), f"{hw}: capability 8.0+ but no bf16")
    plan = plan_training(ctx.a.model, ctx.dsd, measure=ctx.cuda, **ctx.settings())   # measured, as `chatft train` does
    want = "bf16" if hw.bf16 else "fp16" if hw.kind == "cuda" else "fp32"
    check(plan.precision == want, f"{hw}: planned {plan.precision}, not {want} ({plan.reasons.get('precision')})")
    if ctx.cuda and not hw.bf16: raise Skip(f"{hw} has no bfloat16 (planned fp16)")
    tr, res = train_run(ctx, "bf16", plan)
    where = "" if ctx.cuda else " (the CPU's plan: dry run)"
    return dict(res, reason=f"{hw}: planned {plan.precision}{where}; {tr.state.global_step} steps")

def path_qlora(ctx:Ctx)->dict:
    "QLoRA: the base in 4-bit NF4 (bitsandbytes), LoRA trained on it."
    import importlib.metadata as md
    from chatft.train import plan_training
    try: bnb = md.version("bitsandbytes")
    except md.PackageNotFoundError: raise Skip("bitsandbytes is not installed") from None
    plan = plan_training(ctx.a.model, ctx.dsd, method="qlora", measure=ctx.cuda, **ctx.settings())
    tr, res = train_run(ctx, "qlora 4-bit", plan)
    layers = {type(m).__name__ for m in tr.model.modules()}
    check("Linear4bit" in layers, "no Linear4bit layer in the trained model")
    where = "on the CPU (dry run)" if not ctx.cuda else f"on {ctx.device()}"
    return dict(res, reason=f"4-bit NF4 {where}, {plan.precision} compute, bitsandbytes {bnb}; "
                            f"{tr.state.global_step} steps")

def path_early(ctx:Ctx)->dict:
    """Held-out loss every step, patience 1, a high constant rate: `why_stopped` tells the Trainer's state, and the
    run's adapter is the one `KeepBest` saved for the best step."""
    from safetensors.torch import load_file
    from chatft.core import Run
    from chatft.train import plan_training, why_stopped
    steps = 4*ctx.a.steps
    plan = plan_training(ctx.a.model, ctx.dsd, measure=False, **ctx.settings(max_steps=steps, eval_steps=1, patience=1,
                                                              lr=ctx.a.early_lr, lr_scheduler="constant",
                                                              warmup_ratio=0.0))
    tr, res = train_run(ctx, "early stopping", plan)
    s, why, out = tr.state, why_stopped(tr.state, plan), ctx.runs["early stopping"]
    check(s.best_global_step is not None, f"no held-out loss was measured: {why}")
    early = getattr(s, "stopped_early", None)
    if early:
        check("stopped early" in why and s.global_step <= steps, f"stopped early, but: {why}")
        check(s.best_global_step < s.global_step, f"stopped early at its best step: {why}")
    else: check(f"ran the plan's {steps} steps" in why and s.global_step == steps, f"did not stop early, but: {why}")
    check((out/Run.BEST).is_file(), f"{Run.BEST} was not saved")
    best, saved = load_file(out/Run.BEST), load_file(out/Run.WEIGHTS)
    best = {k.replace(".default", ""): v for k, v in best.items()}
    check(best.keys() == saved.keys(), f"{Run.BEST} and {Run.WEIGHTS} hold other tensors")
    differ = [k for k in best if not (best[k].float() == saved[k].float()).all()]
    check(not differ, f"the run's adapter is not the best step's ({len(differ)} tensors differ, e.g. {differ[:1]})")
    how = (f"stopped early at step {s.global_step} of {steps}" if early else
           f"did not stop early: ran all {steps} steps")
    return dict(res, reason=f"{how}; kept step {s.best_global_step} (held-out {s.best_metric:.3f}): the run's "
                            f"adapter = {Run.BEST}")

def _logits(model, ids):
    import torch
    with torch.no_grad(): return model(input_ids=ids).logits[0].float()

def path_merge(ctx:Ctx)->dict:
    """`chatft merge`'s function (on the GPU: merged in the plan's 16-bit type), then the folder loaded by plain
    transformers gives the adapter's logits (`load_run`) on a chat prompt, within the saved type's rounding."""
    import torch
    from transformers import AutoModelForCausalLM
    from chatft.deploy import merge
    from chatft.train import load_run
    run, dest = ctx.run(), ctx.out/"merged"
    merge(run, dest, overwrite=True)
    check(not (dest/"adapter_config.json").exists(), "the merged folder holds an adapter")
    cfg = json.loads((dest/"config.json").read_text())
    saved = cfg.get("dtype") or cfg.get("torch_dtype") or "float32"
    adapter, tok, plan = load_run(run, dtype=torch.float32)
    merged = AutoModelForCausalLM.from_pretrained(dest, dtype=torch.float32)
    adapter, merged = adapter.to(ctx.device()).eval(), merged.to(ctx.device()).eval()
    msgs = [dict(role="user", content="What should I cook tonight? Something quick, please.")]
    ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    ids = ids["input_ids"].to(ctx.device())
    la, lm = _logits(adapter, ids), _logits(merged, ids)
    with adapter.disable_adapter(): moved = (la - _logits(adapter, ids)).abs().max().item()
    diff, scale = (la - lm).abs().max().item(), la.abs().max().item()
    top1 = (la.argmax(-1) == lm.argmax(-1)).float().mean().item()
    tol = (1e-3 if saved == "float32" else 5e-2)*scale     # 16-bit: each merged weight rounded to 8 (bf16) bits
    check(diff <= tol and top1 >= 0.9, f"merged ({saved}) vs adapter: max |dlogit| {diff:.4f} (tolerance {tol:.4f}), "
                                       f"top-1 agrees at {top1:.0%} of {ids.shape[1]} positions")
    return dict(reason=f"merged in {saved} on {ctx.device()}: logits match load_run's within {tol:.3g} at "
                       f"{ids.shape[1]} positions (the adapter moves them by up to {moved:.2f})",
                final=f"max |dlogit| {diff:.4f}, top-1 {top1:.0%}")

def path_gguf(ctx:Ctx)->dict:
    """`chatft gguf RUN --type f16`'s function (in this process: one start fewer), then llama.cpp's next token after
    a few chat prompts (rendered by the GGUF's own template) against transformers' (the run on the CPU in float32):
    most agree, the rest only at near ties."""
    import importlib.util, torch
    import numpy as np
    from chatft.chat import load_chat
    from chatft.deploy import converter_dir, heldout_prompts, gguf, load_gguf, gguf_prompt, NEAR_TIE
    if importlib.util.find_spec("llama_cpp") is None: raise Skip("llama-cpp-python not installed")
    if not os.environ.get("CHATFT_LLAMA_CPP") and not (converter_dir()/"convert_hf_to_gguf.py").exists():
        raise Skip(f"llama.cpp's converter is not cached in {converter_dir()} (no internet to fetch it)")
    run, out = ctx.run(), ctx.out/"gguf"/"model-f16.gguf"
    gguf(run, out, "f16", overwrite=True)
    chat, llm = load_chat(run, device="cpu"), load_gguf(out, n_ctx=1024, logits_all=True)
    prompts, agree, ties, same, diffs = heldout_prompts(run, ctx.a.prompts), 0, 0, 0, []
    for p in prompts:
        ids = gguf_prompt(llm, p, chat.system, chat.train_on, chat.tokenizer)
        same += ids == chat.prompt(p, 32)
        llm.reset(); llm.eval(ids)
        ll = torch.tensor(np.asarray(llm.scores[len(ids)-1]), dtype=torch.float32)
        hf = _logits(chat.model, torch.tensor([ids], device=chat.model.device))[-1].cpu()
        n = min(len(ll), len(hf))          # llama.cpp's vocabulary may be padded
        ll, hf = ll[:n], hf[:n]
        diffs.append((ll - hf).abs().max().item())
        top2 = hf.topk(2)
        if ll.argmax() == hf.argmax(): agree += 1
        elif (top2.values[0] - hf[ll.argmax()]).item() < NEAR_TIE: ties += 1
    k = len(prompts)
    final = f"top-1 {agree}/{k} (+{ties} near ties), same prompt {same}/{k}, max |dlogit| {max(diffs):.3f}"
    check(same == k, f"the GGUF's template renders another prompt for {k - same} of {k} prompts")
    check(agree + ties == k and agree >= math.ceil(0.75*k), f"llama.cpp and transformers part: {final}")
    return dict(reason=f"{out.stat().st_size/2**20:.0f} MB f16 GGUF; next token as transformers' (float32, CPU)",
                final=final, peak=False)

def path_serve(ctx:Ctx)->dict:
    "`chatft serve RUN` on 127.0.0.1, 8 clients at once, each a few requests: every one answered; requests/s."
    import httpx
    from chatft.serve import free_port
    run, port, log = ctx.run(), free_port(), ctx.out/"serve.log"
    with open(log, "w") as f:
        proc = subprocess.Popen([CHATFT, "serve", str(run), "--port", str(port), "--max-batch", "8"], stdout=f,
                                stderr=subprocess.STDOUT, env=env())
    url = f"http://127.0.0.1:{port}"
    try:
        t = time.time()
        while True:
            check(proc.poll() is None, f"chatft serve exited {proc.returncode}: "
                                       f"{(log.read_text().strip().splitlines() or [''])[-1]}")
            check(time.time() - t < 300, "chatft serve did not answer /health in 300 s")
            try:
                if httpx.get(url+"/health", timeout=1).status_code == 200: break
            except httpx.HTTPError: pass
            time.sleep(0.2)
        questions = ["name three fruits", "hi", "write a haiku about tea", "decline a meeting nicely"]
        def client(i):
            got = []
            with httpx.Client(base_url=url, timeout=300) as c:
                for j in range(ctx.a.requests):
                    r = c.post("/v1/chat/completions", json=dict(model="run", max_tokens=ctx.a.reply_tokens,
                               temperature=0, messages=[dict(role="user", content=questions[(i + j) % 4])]))
                    check(r.status_code == 200, f"HTTP {r.status_code}: {r.text[:120]}")
                    msg = r.json()["choices"][0]
                    check(isinstance(msg["message"]["content"], str) and msg["finish_reason"], f"no answer: {msg}")
                    got.append(msg["message"]["content"])
            return got
        t = time.time()
        with ThreadPoolExecutor(8) as pool: answers = [a for got in pool.map(client, range(8)) for a in got]
        wall = time.time() - t
        check(len(answers) == 8*ctx.a.requests, f"{len(answers)} answers of {8*ctx.a.requests}")
    finally:
        proc.terminate()
        try: proc.wait(30)
        except subprocess.TimeoutExpired: proc.kill(); proc.wait()
    return dict(reason=f"8 clients x {ctx.a.requests} requests ({ctx.a.reply_tokens} tokens at most), all answered",
                final=f"{len(answers)/wall:.1f} requests/s", peak=False)

def path_gpus(ctx:Ctx)->dict:
    "`chatft train DATA --gpus 2`: two workers (accelerate's launcher), one run folder."
    import torch
    from chatft.core import Run
    from chatft.train import TrainPlan
    if not ctx.cuda: raise Skip("no CUDA: dry run" if ctx.dry else "no CUDA")
    if (n := torch.cuda.device_count()) < 2: raise Skip(f"{n} GPU here: needs 2+")
    out, steps = ctx.out/"gpus-2", ctx.a.steps
    cli("train", ctx.export, "--model", ctx.a.model, "-o", out, "--gpus", "2", "--max-steps", steps,
        "--max-length", ctx.a.max_length, "--overwrite", timeout=300)
    check(Run(out).state == "finished", f"{out}: no finished run")
    check(TrainPlan.load(out).parallel == "ddp", f"the plan says {TrainPlan.load(out).parallel!r}, not 'ddp'")
    hist = json.loads((out/Run.LOG).read_text())
    done = max(h.get("step", 0) for h in hist)
    check(done == steps, f"ran {done} steps, not {steps}")
    losses = [h["loss"] for h in hist if "loss" in h]
    check(losses and all(math.isfinite(l) for l in losses), f"a non-finite training loss: {losses}")
    runtime = next((h["train_runtime"] for h in reversed(hist) if "train_runtime" in h), None)
    return dict(reason=f"2 workers; plan devices={TrainPlan.load(out).devices}", peak=False,
                step_s=runtime/steps if runtime else None, final=f"loss {losses[0]:.3f} -> {losses[-1]:.3f}")

def path_fsdp(ctx:Ctx)->dict:
    "QLoRA sharded across two GPUs (FSDP), trained from this process by `train`, which starts the two workers."
    import torch
    from chatft.core import Run
    from chatft.train import plan_training, train, load_run
    if not ctx.cuda: raise Skip("no CUDA: dry run (on a CPU accelerate runs FSDP as DDP)" if ctx.dry else "no CUDA")
    if (n := torch.cuda.device_count()) < 2: raise Skip(f"{n} GPU here: needs 2+")
    plan = plan_training(ctx.a.model, ctx.dsd, gpus=2, parallel="fsdp", method="qlora", measure=False,
                         **ctx.settings())
    out = ctx.out/"gpus-2-fsdp"
    res = train(plan, ctx.dsd, out, tokenizer=ctx.tok, overwrite=True)
    check(Run(out).state == "finished", f"{out}: no finished run")
    load_run(out)
    losses = [h["loss"] for h in res.state.log_history if "loss" in h]
    check(losses and all(math.isfinite(l) for l in losses), f"a non-finite training loss: {losses}")
    runtime = next((h["train_runtime"] for h in reversed(res.state.log_history) if "train_runtime" in h), None)
    return dict(reason=f"2 workers, FSDP, QLoRA ({plan.precision}); the run loads", peak=False,
                step_s=runtime/res.state.global_step if runtime else None,
                final=f"loss {losses[0]:.3f} -> {losses[-1]:.3f}")

CHECKS = dict(zip(PATHS, [path_t4, path_bf16, path_qlora, path_early, path_merge, path_gguf, path_serve, path_gpus,
                          path_fsdp]))

# --- running and reporting ---

def run_path(ctx:Ctx, name:str, fn)->Row:
    "Run one path alone: its row, whatever it raises."
    import torch
    row, t = Row(name), time.time()
    print(f"[gpu_check] {name} ...", file=sys.stderr, flush=True)
    if ctx.cuda: torch.cuda.reset_peak_memory_stats()
    try:
        with redirect_stdout(sys.stderr): got = fn(ctx)   # stdout keeps only the table
        row.status, row.reason, row.step_s, row.final = "pass", got["reason"], got.get("step_s"), got.get("final", "")
        if ctx.cuda and got.get("peak", True): row.peak_gb = torch.cuda.max_memory_allocated()/2**30
    except Skip as e: row.status, row.reason = "skipped", str(e)
    except Exception as e:
        traceback.print_exc()
        row.reason = f"{type(e).__name__}: {e}"
    row.reason, row.seconds = one_line(row.reason), round(time.time() - t, 1)
    print(f"[gpu_check] {name}: {row.status} in {row.seconds} s: {row.reason}", file=sys.stderr, flush=True)
    gc.collect()
    if ctx.cuda: torch.cuda.empty_cache()
    return row

def table(rows:list)->str:
    "The rows as one markdown table."
    num = lambda x, f: "-" if x is None else format(x, f)
    cell = lambda text: str(text).replace("|", "\\|")
    lines = ["| path | status | step time s | peak GPU memory GB | final loss/metric |", "|---|---|---|---|---|"]
    for r in rows:
        status = f"{r.status}: {r.reason}" if r.status != "skipped" else f"skipped ({r.reason})"
        lines.append(f"| {r.path} | {cell(status)} | {num(r.step_s, '.3f')} | {num(r.peak_gb, '.2f')} | "
                     f"{cell(r.final or '-')} |")
    return "\n".join(lines)

def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dry-run", action="store_true", help="on the CPU with the tiny model (CUDA hidden), 2 steps")
    p.add_argument("--model", help="a Hub id found offline, or a local folder (default: the demo model; tiny in a dry "
                   "run)")
    p.add_argument("--steps", type=int, help="optimizer steps per training path (default 8; 2 in a dry run)")
    p.add_argument("--out", help="where the runs go (default: a new temporary folder)")
    p.add_argument("--json", help="also write the table here as JSON")
    p.add_argument("--n", type=int, help="synthetic conversations (default 80; 12 in a dry run)")
    p.add_argument("--max-length", type=int, help="tokens per packed row (default 256; 128 in a dry run)")
    p.add_argument("--early-lr", type=float, help="the early-stopping path's constant learning rate")
    p.add_argument("--prompts", type=int, default=4, help="prompts the GGUF check compares")
    p.add_argument("--requests", type=int, help="requests per serve client (default 4; 2 in a dry run)")
    p.add_argument("--reply-tokens", type=int, default=32, help="max_tokens of each serve request")
    p.add_argument("--only", nargs="+", choices=PATHS, metavar="PATH", help=f"run only these paths: {PATHS}")
    a = p.parse_args(argv)
    dry = a.dry_run
    a.steps = a.steps or (2 if dry else 8)
    a.n = a.n or (12 if dry else 80)
    a.max_length = a.max_length or (128 if dry else 256)
    a.requests = a.requests or (2 if dry else 4)
    a.early_lr = a.early_lr or (2e-2 if dry else 1e-2)
    return a

def main(argv=None)->int:
    a = parse(argv)
    for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
        os.environ.setdefault(k, "1")
    if a.dry_run: os.environ["CUDA_VISIBLE_DEVICES"] = ""      # before torch loads: the CPU, as in CI
    t = time.time()
    import torch
    from chatft.core import quiet
    from chatft.models import DEMO_MODEL, TINY_MODEL
    quiet()
    a.model = a.model or (TINY_MODEL if a.dry_run else DEMO_MODEL)
    ctx = Ctx(a)
    device = torch.cuda.get_device_name(0) if ctx.cuda else "CPU"
    print(f"[gpu_check] {a.model} on {device}, {a.steps} steps a path, runs in {ctx.out}", file=sys.stderr)
    try:
        with redirect_stdout(sys.stderr): ctx.data()
        setup = None
    except Exception as e:
        traceback.print_exc()
        setup = one_line(f"data: {type(e).__name__}: {e}")
    rows = [run_path(ctx, name, fn) if setup is None else Row(name, reason=setup)
            for name, fn in CHECKS.items() if not a.only or name in a.only]
    seconds = round(time.time() - t, 1)
    print(f"\n{a.model} on {device}{' (dry run)' if a.dry_run else ''}: {seconds} s\n")
    print(table(rows), flush=True)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(dict(model=a.model, device=device, dry_run=a.dry_run, steps=a.steps,
                                                seconds=seconds, out=str(ctx.out), rows=[asdict(r) for r in rows]),
                                           indent=2))
    return int(any(r.status == "fail" for r in rows))

if __name__ == "__main__": sys.exit(main())
