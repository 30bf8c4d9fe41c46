"""Which accelerator a backend runs on, and the tolerance profile for it.

Goldens carry CPU float32 tolerances. On an accelerator the harness first
turns off reduced-precision float32 matmuls (TF32 on NVIDIA GPUs, bf16 passes
on TPUs), then allows what rounding the device still adds: each profile's
floor raises a float output's atol, never lowers it, and says why. Integer
outputs stay exact everywhere. `DISTILBERT_HUB_ALLOW_TF32=1` keeps TF32 on
and selects the looser `gpu-tf32` profile, to measure what TF32 costs.
"""

import os
from dataclasses import dataclass

import keras

TF32_FLOOR = 1e-2


@dataclass(frozen=True)
class ToleranceProfile:
    device: str
    atol_floor: float
    reason: str


PROFILES = {
    "cpu": ToleranceProfile("cpu", 0.0, "the golden's own tolerance"),
    # Measured on an H200 (jax 0.11 and torch 2.11, CUDA 13): worst 3.7e-6 over
    # every golden, tiny and full size, so the CPU tolerance stands on GPU.
    "gpu": ToleranceProfile("gpu", 0.0, "the golden's own tolerance (TF32 off; worst 3.7e-6 measured on an H200)"),
    "gpu-tf32": ToleranceProfile(
        "gpu-tf32",
        TF32_FLOOR,
        "TF32 matmuls (10-bit mantissa, DISTILBERT_HUB_ALLOW_TF32=1): worst 4.4e-3 "
        "measured on an H200 (jax; torch keeps float32 matmuls unless told otherwise)",
    ),
    "tpu": ToleranceProfile(
        "tpu",
        5e-4,
        "TPU float32 matmuls at 'highest' precision are emulated with bf16 passes (not yet measured here)",
    ),
}


def tf32_allowed():
    return os.environ.get("DISTILBERT_HUB_ALLOW_TF32") == "1"


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
    """Turn off reduced-precision float32 matmuls on the current backend
    (unless DISTILBERT_HUB_ALLOW_TF32=1 asks to measure them)."""
    if tf32_allowed():
        return
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
    device = accelerator()
    if device == "gpu" and tf32_allowed():
        return PROFILES["gpu-tf32"]
    return PROFILES[device]
