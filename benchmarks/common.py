"""What every benchmark records beside its figures: the CPU (model and the
flags that decide float32/bf16 speed) and the library versions."""

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


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


def shape_arguments(description, batch, length, repeats):
    """The arguments every forward benchmark takes: the batch shape, the repeats and where the report goes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--batch", type=int, default=batch)
    parser.add_argument("--length", type=int, default=length)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--out", default=str(REPO_ROOT / "reports"))
    return parser


def run_json_child(code, *argv):
    """Runs `code` in a fresh interpreter (one backend per process) and returns
    the JSON object on its last stdout line, or {"error": last stderr line}."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=os.pathsep.join([str(REPO_ROOT / "src")] + sys.path))
    done = subprocess.run([sys.executable, "-c", code, *map(str, argv)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1][:300]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def token_cosines(actual, expected):
    """The cosine of each token's vector (last axis) with the matching one."""
    import numpy as np

    return (actual * expected).sum(-1) / (np.linalg.norm(actual, axis=-1) * np.linalg.norm(expected, axis=-1))


def worst_cosine(actual, expected, mask=None):
    """The smallest token cosine, over the tokens `mask` marks real (every token without one)."""
    cosines = token_cosines(actual, expected)
    return float((cosines if mask is None else cosines[mask.astype(bool)]).min())
