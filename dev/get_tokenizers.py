"""Real tokenizers for chatft's tiny stand-ins of GPT-2/DialoGPT, Llama-2 and Mistral v0.1 (setup.sh / CI run this once;
tests never download).

`chatft.models.real_tokenizer` fetches each from a PyPI package that ships it (`pip download --no-deps`, nothing
installed): GPT-2's byte-level BPE from `openai-whisper`'s `gpt2.tiktoken`, Mistral-7B v0.1's SentencePiece model
from `mistral-common` (it stands in for Llama-2's too). This script fetches both into chatft's cache and checks that
the GPT-2 one encodes llama.cpp's pre-tokenizer probe text to the hash llama.cpp lists for openai-community/gpt2, so
llama.cpp recognises it as GPT-2's.

    python dev/get_tokenizers.py
"""
import ast, hashlib, sys

GPT2_HASH = "3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454"   # llama.cpp's hash for openai-community/gpt2

def main()->int:
    from transformers import AutoTokenizer
    from chatft.models import TOKENIZER_SOURCES, real_tokenizer
    from chatft.deploy import converter_dir
    for name in TOKENIZER_SOURCES: print(f"{name}: {real_tokenizer(name)}")
    base = converter_dir()/"conversion"/"base.py"                  # llama.cpp's probe text, from its converter
    if base.exists():
        line = next(l.strip() for l in base.read_text().splitlines() if l.strip().startswith("chktxt = "))
        tok = AutoTokenizer.from_pretrained(real_tokenizer("gpt2"))
        probe = ast.literal_eval(line[len("chktxt = "):])
        assert hashlib.sha256(str(tok.encode(probe)).encode()).hexdigest() == GPT2_HASH, "not GPT-2's pre-tokenizer"
        print("gpt2: llama.cpp recognises it as GPT-2's")
    return 0

if __name__ == "__main__": sys.exit(main())
