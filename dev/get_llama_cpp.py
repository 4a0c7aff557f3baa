"""Prepare llama.cpp for chatft's GGUF export and its tests (setup.sh / CI run this once; tests never download).

1. `chatft.deploy.fetch_converter()`: downloads llama-cpp-python's sdist (pinned `LLAMA_CPP_VERSION`) from PyPI with
   pip into chatft's cache and extracts llama.cpp's `convert_hf_to_gguf.py`, `conversion/` and `gguf-py/`.
2. With --install: builds and installs that same sdist (llama-cpp-python, the runtime the tests check GGUFs with;
   about 3 minutes on 2 idle cores, needs cmake and a C++ compiler), unless that version is already installed.

    python dev/get_llama_cpp.py [--install]
"""
import sys, argparse, subprocess, importlib.metadata

def installed()->str|None:
    try: return importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError: return None

def main(argv=None)->int:
    p = argparse.ArgumentParser(description="Fetch llama.cpp's converter (and build llama-cpp-python) for chatft.")
    p.add_argument("--install", action="store_true", help="also build and install llama-cpp-python from the same sdist")
    a = p.parse_args(argv)
    from chatft.deploy import fetch_converter, converter_dir, LLAMA_CPP_VERSION
    print(f"llama.cpp converter: {fetch_converter()}")
    if a.install:
        if installed() == LLAMA_CPP_VERSION: print(f"llama-cpp-python {LLAMA_CPP_VERSION} already installed")
        else:
            sdist = converter_dir().parent/f"llama_cpp_python-{LLAMA_CPP_VERSION}.tar.gz"
            subprocess.run([sys.executable, "-m", "pip", "install", "-q", str(sdist)], check=True)
            print(f"llama-cpp-python {installed()} installed")
    return 0

if __name__ == "__main__": sys.exit(main())
