"""Generation speed of llama.cpp (GGUF q8_0 and f16, through llama-cpp-python) vs transformers (float32) on this CPU.

The same model (the demo model, or --model FOLDER), the same chat prompts, one request at a time, greedy, exactly
--tokens new tokens each (the end-of-turn token is suppressed on both sides so every reply has the same length).
Prints tokens/s side by side with ratios to transformers. Needs llama.cpp's converter in chatft's cache
(`chatft.deploy.fetch_converter()`) and llama-cpp-python installed.

    python benchmarks/bench_gguf.py [--tokens 64] [--prompts 4] [--threads 2]
"""
import os, sys, time, argparse, tempfile
from pathlib import Path

def prompts(n:int)->list:
    from chatft.deploy import CHECK_QUESTIONS
    qs = CHECK_QUESTIONS + ["Explain what a GGUF file is.", "Write a haiku about compilers.", "Name four rivers."]
    return [[dict(role="user", content=q)] for q in qs[:n]]

def bench_transformers(folder, convs, tokens:int, threads:int)->dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.set_num_threads(threads)
    tok, model = AutoTokenizer.from_pretrained(folder), AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    ids = [tok.apply_chat_template(c, add_generation_prompt=True, return_tensors="pt", return_dict=True) for c in convs]
    with torch.no_grad():
        model.generate(**ids[0], max_new_tokens=4, do_sample=False)   # warm-up
        t, n = time.perf_counter(), 0
        for x in ids:
            out = model.generate(**x, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
            n += out.shape[1] - x["input_ids"].shape[1]
    return dict(tokens=n, seconds=time.perf_counter() - t)

def bench_llama(path, convs, tokens:int, threads:int)->dict:
    from llama_cpp import Llama
    llm = Llama(model_path=str(path), n_ctx=1024, n_threads=threads, verbose=False, chat_format="chat_template.default")
    no_stop = {llm.token_eos(): -1e9}
    for t in (llm.tokenize(b"<|im_end|>", add_bos=False, special=True)): no_stop[t] = -1e9
    kw = dict(temperature=0.0, top_k=1, repeat_penalty=1.0, logit_bias=no_stop, max_tokens=tokens)
    llm.create_chat_completion(convs[0], **dict(kw, max_tokens=4))  # warm-up
    t, n = time.perf_counter(), 0
    for c in convs: n += llm.create_chat_completion(c, **kw)["usage"]["completion_tokens"]
    s = time.perf_counter() - t
    llm.close()
    return dict(tokens=n, seconds=s)

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="a transformers model folder (default: the demo model)")
    p.add_argument("--tokens", type=int, default=64, help="new tokens per reply")
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    a = p.parse_args(argv)
    from chatft.models import model_path, DEMO_MODEL
    from chatft.deploy import convert_to_gguf, find_converter
    folder = Path(a.model or model_path(DEMO_MODEL))
    convs = prompts(a.prompts)
    tmp = Path(tempfile.mkdtemp())
    files = {t: convert_to_gguf(folder, tmp/f"model-{t}.gguf", t, find_converter(fetch=False)) for t in ("f16", "q8_0")}
    rows = [("transformers float32", bench_transformers(folder, convs, a.tokens, a.threads), folder/"model.safetensors")]
    rows += [(f"llama.cpp {t}", bench_llama(f, convs, a.tokens, a.threads), f) for t, f in files.items()]
    base = rows[0][1]["tokens"]/rows[0][1]["seconds"]
    print(f"{folder.name}: {len(convs)} prompts x {a.tokens} new tokens, greedy, one request at a time, "
          f"{a.threads} threads, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'engine':<22} {'size MB':>8} {'tokens':>7} {'seconds':>8} {'tokens/s':>9} {'vs transformers':>16}")
    for name, r, f in rows:
        tps = r["tokens"]/r["seconds"]
        print(f"{name:<22} {f.stat().st_size/2**20:>8.0f} {r['tokens']:>7} {r['seconds']:>8.2f} {tps:>9.1f} {tps/base:>15.2f}x")

if __name__ == "__main__": main()
