"""Each GGUF type (f16, q8_0, q6_k, q5_k_m, q4_k_m, through llama-cpp-python) on this CPU: size, greedy agreement with
transformers, and generation speed, in one table.

The same model (the demo model, or --model FOLDER). f16 and q8_0 come from llama.cpp's converter, the k-quants from
llama.cpp's quantizer on the f16 (`chatft.deploy.quantize_gguf`). Token match rate: `chatft.deploy.quant_table` on
`chatft.deploy.CHECK_QUESTIONS` (greedy, --check-tokens each; transformers on the f16-rounded weights is the
reference). Speed: the same chat prompts, one request at a time, greedy, exactly --tokens new tokens each (the
end-of-turn token is suppressed on both sides so every reply has the same length), with transformers float32 as a
baseline. Needs llama.cpp's converter in chatft's cache (`chatft.deploy.fetch_converter()`) and llama-cpp-python.

    python benchmarks/bench_gguf.py [--tokens 64] [--prompts 4] [--threads 2] [--check-tokens 32]
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

def tensor_types(path)->str:
    "How the file's 2-D weights are stored: 'Q4_K 92, Q5_0 108, ...' (a k-quant falls back to other types for rows "
    "whose width is not a multiple of 256)."
    from collections import Counter
    from gguf import GGUFReader
    c = Counter(t.tensor_type.name for t in GGUFReader(path).tensors if len(t.shape) > 1)
    return ", ".join(f"{k} {v}" for k, v in c.most_common())

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="a transformers model folder (default: the demo model)")
    p.add_argument("--tokens", type=int, default=64, help="new tokens per reply")
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--check-tokens", type=int, default=32, help="tokens per greedy reply in the agreement check")
    a = p.parse_args(argv)
    from chatft.models import model_path, DEMO_MODEL
    from chatft.deploy import (convert_to_gguf, find_converter, quantize_gguf, quant_table, rounded_chat,
                               CHECK_QUESTIONS, K_QUANTS)
    folder = Path(a.model or model_path(DEMO_MODEL))
    convs = prompts(a.prompts)
    tmp = Path(tempfile.mkdtemp())
    files = {t: convert_to_gguf(folder, tmp/f"model-{t}.gguf", t, find_converter(fetch=False)) for t in ("f16", "q8_0")}
    files |= {t: quantize_gguf(files["f16"], tmp/f"model-{t}.gguf", t) for t in K_QUANTS}
    checks = [[dict(role="user", content=q)] for q in CHECK_QUESTIONS]
    table = quant_table(files, rounded_chat(folder), checks, a.check_tokens).set_index("type")
    base = bench_transformers(folder, convs, a.tokens, a.threads)
    speed = {t: bench_llama(f, convs, a.tokens, a.threads) for t, f in files.items()}
    tps = lambda r: r["tokens"]/r["seconds"]
    print(f"{folder.name}: match rate on {len(checks)} prompts x {a.check_tokens} greedy tokens; speed on {len(convs)} "
          f"prompts x {a.tokens} new tokens, one request at a time, {a.threads} threads, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'type':<22} {'size MB':>8} {'token match':>12} {'agree':>6} {'tokens/s':>9} {'vs transformers':>16}   2-D weights stored as")
    size = (folder/"model.safetensors").stat().st_size/2**20
    print(f"{'transformers float32':<22} {size:>8.0f} {'reference':>12} {'':>6} {tps(base):>9.1f} {1:>15.2f}x")
    for t in ("f16", "q8_0", "q6_k", "q5_k_m", "q4_k_m"):
        r = table.loc[t]
        print(f"{'llama.cpp ' + t:<22} {r.size_mb:>8.0f} {r.token_match:>12.3f} {r.agree:>6} {tps(speed[t]):>9.1f} "
              f"{tps(speed[t])/tps(base):>15.2f}x   {tensor_types(files[t])}")

if __name__ == "__main__": main()
