"""Which accelerator a backend runs on, and the tolerance profile for it.

Goldens carry CPU float32 tolerances. On an accelerator the harness first
turns off reduced-precision float32 matmuls (TF32 on NVIDIA GPUs, bf16 passes
on TPUs), then allows the extra rounding that other kernels and summation
orders bring: each profile's floor raises a float output's atol, never lowers
it, and says why. Integer outputs stay exact everywhere.
"""

import os
from dataclasses import dataclass

import keras


@dataclass(frozen=True)
class ToleranceProfile:
    device: str
    atol_floor: float
    reason: str


PROFILES = {
    "cpu": ToleranceProfile("cpu", 0.0, "the golden's own tolerance"),
    "gpu": ToleranceProfile(
        "gpu",
        5e-5,
        "GPU float32 with TF32 off: cuBLAS/cuDNN kernels sum in another order than "
        "CPU BLAS, and GELU/softmax use fused kernels; measured on an H100 below 2e-5",
    ),
    "tpu": ToleranceProfile(
        "tpu",
        5e-4,
        "TPU float32 matmuls at 'highest' precision are emulated with bf16 passes",
    ),
}


def accelerator():
    """'cpu', 'gpu' or 'tpu': where the current Keras backend puts tensors.
    DISTILBERT_HUB_DEVICE overrides the detection."""
    override = os.environ.get("DISTILBERT_HUB_DEVICE")
    if override:
        return override
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        platform = jax.devices()[0].platform
        return {"cuda": "gpu", "rocm": "gpu"}.get(platform, platform)
    if backend == "torch":
        import torch

        return "gpu" if torch.cuda.is_available() else "cpu"
    if backend == "tensorflow":
        import tensorflow as tf

        return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    return "cpu"


def use_full_float32():
    """Turn off reduced-precision float32 matmuls on the current backend."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        jax.config.update("jax_default_matmul_precision", "highest")
    elif backend == "torch":
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    elif backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_tensor_float_32_execution(False)


def current_profile():
    return PROFILES[accelerator()]
