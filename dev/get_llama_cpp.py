"""Prepare llama.cpp for chatft's GGUF export and its tests (setup.sh / CI run this once; tests never download).

1. `chatft.deploy.fetch_converter()`: downloads llama-cpp-python's sdist (pinned `LLAMA_CPP_VERSION`) from PyPI with
   pip into chatft's cache and extracts llama.cpp's `convert_hf_to_gguf.py`, `conversion/` and `gguf-py/`.
2. With --install: builds a wheel of that same sdist into `<chatft cache>/llama.cpp/wheels` (about 3 minutes on
   2 idle cores, needs cmake and a C++ compiler) and installs it, unless that version is already installed. CI's
   learner's-world runs install chatft's `gguf` extra in a bare venv from that folder (`PIP_FIND_LINKS`) instead
   of building llama.cpp a second time.
3. With --wheels: print that folder (after building the wheel into it if it is missing).

    python dev/get_llama_cpp.py [--install] [--wheels]
"""
import sys, argparse, subprocess, importlib.metadata

def installed()->str|None:
    try: return importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError: return None

def main(argv=None)->int:
    p = argparse.ArgumentParser(description="Fetch llama.cpp's converter (and build llama-cpp-python) for chatft.")
    p.add_argument("--install", action="store_true", help="also build and install llama-cpp-python from the same sdist")
    p.add_argument("--wheels", action="store_true", help="print the folder that holds the built wheel (building it if missing)")
    a = p.parse_args(argv)
    from chatft.deploy import fetch_converter, converter_dir, LLAMA_CPP_VERSION
    converter = fetch_converter()
    if not a.wheels: print(f"llama.cpp converter: {converter}")
    sdist = converter_dir().parent/f"llama_cpp_python-{LLAMA_CPP_VERSION}.tar.gz"
    wheels = converter_dir().parent/"wheels"
    def wheel():
        built = sorted(wheels.glob(f"llama_cpp_python-{LLAMA_CPP_VERSION}-*.whl"))
        if not built:
            subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(sdist)], check=True)
            built = sorted(wheels.glob(f"llama_cpp_python-{LLAMA_CPP_VERSION}-*.whl"))
        return built[-1]
    if a.install:
        if installed() == LLAMA_CPP_VERSION: print(f"llama-cpp-python {LLAMA_CPP_VERSION} already installed")
        else:
            subprocess.run([sys.executable, "-m", "pip", "install", "-q", str(wheel())], check=True)
            print(f"llama-cpp-python {installed()} installed")
    if a.wheels: wheel(); print(wheels)
    return 0

if __name__ == "__main__": sys.exit(main())
