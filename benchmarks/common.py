"""What every benchmark records beside its figures: the CPU (model and the
flags that decide float32/bf16 speed) and the library versions."""

import contextlib
import importlib.metadata
import platform


def cpu_description():
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            lines = cpuinfo.readlines()
    except OSError:
        lines = []
    for line in lines:
        if line.startswith("model name") and model in ("unknown", "", platform.processor()):
            model = line.split(":", 1)[1].strip()
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni", "avx_vnni")
    isa = "AVX-512" if "avx512f" in flags else ("AVX2" if "avx2" in flags else "no AVX2")
    if {"avx512_bf16", "amx_bf16"} & flags:
        isa += " with native bf16"
    return {"model": model, "isa": isa, "flags": sorted(f for f in wanted if f in flags)}


def versions(*names):
    found = {}
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    return found
