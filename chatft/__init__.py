__version__ = "0.0.1"

import logging as _logging
# bitsandbytes, imported by peft, tries to fetch a 4-bit CPU kernel from the Hub on AVX512-BF16 CPUs and logs a warning
# nobody using chatft can act on when it cannot ("Failed to load CPU gemm_4bit_forward ... pip install kernels"): drop
# that one record; its other warnings still show
_logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(lambda r: "gemm_4bit_forward" not in r.getMessage())
# and, offline, the `kernels` package it goes through says it skipped a trust check of that same kernel: nothing to act on
_logging.getLogger("kernels._internals.hf_hub").addFilter(lambda r: "Skipping publisher trust check" not in r.getMessage())
