"""Read and write Hugging Face checkpoint weights: `model.safetensors`,
sharded safetensors (`model.safetensors.index.json`), and `pytorch_model.bin`
(only through `torch.load(weights_only=True)`, never a plain pickle).

safetensors files are parsed here (header JSON + raw little-endian data),
so bfloat16 and float16 weights load without torch. A tensor is read from
the file only when it is asked for (`SafetensorsTensor`), one at a time, so
loading never holds the checkpoint in memory beside the model. Every tensor
becomes float32 by one rule: bfloat16 and float16 widen exactly; float64
narrows, and a value beyond float32's range is refused rather than turned
into inf.
"""

import json
import os
import struct
from pathlib import Path

import numpy as np

SAFETENSORS_NAME = "model.safetensors"
SAFETENSORS_INDEX_NAME = "model.safetensors.index.json"
PYTORCH_NAME = "pytorch_model.bin"
PYTORCH_INDEX_NAME = "pytorch_model.bin.index.json"
# Buffers some checkpoints carry that are not parameters.
IGNORED_KEYS = ("embeddings.position_ids", "distilbert.embeddings.position_ids")

_SAFETENSORS_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "BF16": np.uint16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}
FLOAT32_MAX = float(np.finfo(np.float32).max)


class CheckpointError(ValueError):
    """A checkpoint is missing, malformed, or does not fit the model."""


def to_float32(value, name, source):
    """`value` as float32 by the rule in the module docstring (bfloat16 as an
    ml_dtypes array, float16, float64 or float32)."""
    dtype = np.dtype(value.dtype)
    if dtype.name == "bfloat16":  # ml_dtypes, e.g. from jax or a user's arrays
        return np.asarray(value).astype(np.float32)
    if dtype == np.float32:
        return value
    if dtype == np.float16:
        return value.astype(np.float32)
    if dtype == np.float64:
        finite = value[np.isfinite(value)]
        if finite.size and np.abs(finite).max() > FLOAT32_MAX:
            raise CheckpointError(
                f"{source}: weight '{name}' holds {np.abs(finite).max():.3g}, beyond float32's range."
            )
        return value.astype(np.float32)
    raise CheckpointError(f"{source}: weight '{name}' has dtype {dtype}, expected a float type.")


def bf16_bits_to_float32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def read_safetensors(path):
    """`{name: float32 array}` from one safetensors file."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: not a safetensors file (only {size} bytes).")
        (header_size,) = struct.unpack("<Q", head)
        if header_size > size - 8 or header_size > 100_000_000:
            raise CheckpointError(f"{path}: corrupt safetensors header (claims {header_size} bytes, file has {size}).")
        try:
            header = json.loads(f.read(header_size))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CheckpointError(f"{path}: corrupt safetensors header ({error}).") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt safetensors header (not a JSON object).")
    header.pop("__metadata__", None)
    data_start = 8 + header_size
    data_size = size - data_start
    tensors = {}
    for name, info in header.items():
        try:
            dtype_name, shape, (begin, end) = info["dtype"], tuple(info["shape"]), info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{path}: corrupt safetensors entry for '{name}'.") from None
        if dtype_name not in _SAFETENSORS_DTYPES:
            raise CheckpointError(f"{path}: weight '{name}' has unsupported dtype {dtype_name}.")
        dtype = np.dtype(_SAFETENSORS_DTYPES[dtype_name])
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if end - begin != expected or end > data_size or begin < 0:
            raise CheckpointError(
                f"{path}: weight '{name}' needs bytes [{begin}, {end}) of the data section, which has "
                f"{data_size} bytes (file truncated or corrupt)."
            )
        if dtype_name != "BF16" and dtype.kind != "f":
            raise CheckpointError(f"{path}: weight '{name}' has dtype {dtype}, expected a float type.")
        tensors[name] = SafetensorsTensor(path, name, data_start + begin, dtype, shape, dtype_name == "BF16")
    return tensors


class SafetensorsTensor:
    """One tensor of a safetensors file, read as float32 when converted to an
    array (`np.asarray`), and not kept: each conversion reads it again."""

    def __init__(self, path, name, offset, stored_dtype, shape, bfloat16):
        self.path, self.name, self.offset = path, name, offset
        self.stored_dtype, self.shape, self.bfloat16 = stored_dtype, shape, bfloat16
        self.dtype = np.dtype(np.float32)
        self.ndim = len(shape)

    def __array__(self, dtype=None, copy=None):
        count = int(np.prod(self.shape, dtype=np.int64))
        raw = np.fromfile(self.path, dtype=self.stored_dtype, count=count, offset=self.offset).reshape(self.shape)
        value = bf16_bits_to_float32(raw) if self.bfloat16 else to_float32(raw, self.name, self.path)
        return value if dtype is None else value.astype(dtype)


def read_torch_bin(path):
    try:
        import torch
    except ImportError:
        raise CheckpointError(
            f"{path}: a pytorch_model.bin needs torch to read (torch.load with weights_only=True). "
            "Install torch, or convert the checkpoint to safetensors."
        ) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"{path}: cannot be read as a weights-only torch checkpoint ({error}).") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, expected a state dict.")
    tensors = {}
    for name, tensor in state.items():
        if not torch.is_floating_point(tensor):
            tensors[name] = tensor.numpy()
            continue
        if tensor.dtype == torch.bfloat16:
            tensor = tensor.float()
        tensors[name] = to_float32(tensor.numpy(), name, path)
    return tensors


def _read_index(directory, index_name, reader):
    index_path = directory / index_name
    try:
        weight_map = json.loads(index_path.read_text())["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise CheckpointError(f"{index_path}: not a valid shard index ({error}).") from None
    tensors = {}
    for shard in sorted(set(weight_map.values())):
        shard_path = directory / shard
        if not shard_path.is_file():
            raise CheckpointError(f"{index_path}: shard '{shard}' is missing from {directory}.")
        for name, value in reader(shard_path).items():
            if weight_map.get(name) != shard:
                raise CheckpointError(f"{shard_path}: holds '{name}', which the index puts in {weight_map.get(name)}.")
            tensors[name] = value
    missing = sorted(set(weight_map) - set(tensors))
    if missing:
        raise CheckpointError(f"{index_path}: lists weight(s) no shard holds: {missing[:5]}.")
    return tensors


def read_state_dict(directory):
    """The checkpoint's tensors as `{hf_name: float32 array}` (buffers such as
    `position_ids` dropped), preferring safetensors over torch pickles."""
    directory = Path(directory)
    if (directory / SAFETENSORS_NAME).is_file():
        tensors = read_safetensors(directory / SAFETENSORS_NAME)
    elif (directory / SAFETENSORS_INDEX_NAME).is_file():
        tensors = _read_index(directory, SAFETENSORS_INDEX_NAME, read_safetensors)
    elif (directory / PYTORCH_NAME).is_file():
        tensors = read_torch_bin(directory / PYTORCH_NAME)
    elif (directory / PYTORCH_INDEX_NAME).is_file():
        tensors = _read_index(directory, PYTORCH_INDEX_NAME, read_torch_bin)
    else:
        raise CheckpointError(
            f"{directory}: no weights found (expected {SAFETENSORS_NAME}, {SAFETENSORS_INDEX_NAME} or {PYTORCH_NAME})."
        )
    return {name: value for name, value in tensors.items() if name not in IGNORED_KEYS}


def write_safetensors(path, tensors):
    """Write float32 `tensors` as transformers does (`format: pt` metadata)."""
    from safetensors.numpy import save_file

    save_file(
        {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()},
        os.fspath(path),
        metadata={"format": "pt"},
    )


def read_json(path, what="file"):
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: missing {what}.")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: not valid JSON ({error}).") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(value).__name__}.")
    return value


def write_json(path, value):
    Path(path).write_text(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
