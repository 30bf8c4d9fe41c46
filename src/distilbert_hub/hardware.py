"""What the machine can do fast: a bf16 policy on a CPU without native bf16
instructions runs emulated, no faster than float32 (torch: ten times slower)."""

import functools
import warnings

import keras

NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
NATIVE_INT8_GEMM_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
_warned = False


@functools.cache
def cpu_flags():
    """The CPU's feature flags from /proc/cpuinfo, or None where it is unreadable (not Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def torch_reduced_precision_gemm_is_onednn():
    """Whether torch runs bf16 and fp16 GEMMs on this CPU through oneDNN, as it
    does on x86 CPUs with AVX-512 (avx512bw, avx512vl, avx512dq); below that its
    own GEMM runs them, fast only over contiguous rows of the weight (the
    `torch.nn.Linear` layout). True where the flags are unknown."""
    flags = cpu_flags()
    return flags is None or {"avx512bw", "avx512vl", "avx512dq"} <= flags


def torch_integer_gemm_is_native():
    """Whether torch's int8 GEMM (`torch._int_mm`) has this CPU's int8 dot
    product instructions (VNNI or AMX) to run on; without them it measured 60
    times slower than float32 (AVX2 EPYC, 4096 x 768 x 3072). True where the
    flags are unknown."""
    flags = cpu_flags()
    return flags is None or bool(flags & NATIVE_INT8_GEMM_FLAGS)


def accelerator_present():
    """True when the backend computes on a GPU or TPU rather than the CPU."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.default_backend() != "cpu"
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("TPU"))
    return False


def warn_if_bf16_is_emulated(policy):
    """Warn once per process when `policy` computes in bfloat16 on a CPU
    without native bf16 (avx512_bf16 or amx_bf16)."""
    global _warned
    if _warned or "bfloat16" not in str(getattr(policy, "compute_dtype", policy)):
        return
    flags = cpu_flags()
    if flags is None or flags & NATIVE_BF16_FLAGS or accelerator_present():
        return
    _warned = True
    warnings.warn(
        f"dtype policy '{policy.name}' computes in bfloat16, but this CPU has no native bf16 instructions "
        "(neither avx512_bf16 nor amx_bf16): bf16 matmuls are emulated there, no faster than float32 and on "
        "torch about ten times slower. Use dtype='float32' on this machine.",
        stacklevel=3,
    )
