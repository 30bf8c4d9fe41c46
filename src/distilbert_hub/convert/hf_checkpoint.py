"""Read and write Hugging Face checkpoint weights: `model.safetensors`, sharded safetensors
(`model.safetensors.index.json`), and `pytorch_model.bin` (only through `torch.load(weights_only=True)`).

safetensors files are read through the library's own `safe_open` (every header it refuses is refused
here, the file named). A tensor is read only when asked for (`SafetensorsTensor`), one at a time, so
loading never holds the checkpoint in memory beside the model; shapes come from the header, so a config
is checked against them before anything is allocated. Every tensor becomes float32: bfloat16 and float16
widen exactly; float64 narrows, and a value beyond float32's range is refused rather than turned into inf.
Every file is opened through `checkpoint_file`: a name leaving the checkpoint directory (`..`, an absolute
path, a symlink) is refused before it is opened, and errors never quote an outside file.
"""

import json
import math
import os
from pathlib import Path

import numpy as np

SAFETENSORS_NAME = "model.safetensors"
SAFETENSORS_INDEX_NAME = "model.safetensors.index.json"
PYTORCH_NAME = "pytorch_model.bin"
PYTORCH_INDEX_NAME = "pytorch_model.bin.index.json"
# Buffers some checkpoints carry that are not parameters.
IGNORED_KEYS = ("embeddings.position_ids", "distilbert.embeddings.position_ids")

FLOAT_SAFETENSORS_DTYPES = ("F64", "F32", "F16", "BF16")
# Little-endian as the format stores them; bfloat16 read as its bits (numpy has no bfloat16).
SAFETENSORS_NUMPY_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2"}
FLOAT32_MAX = float(np.finfo(np.float32).max)
# A checkpoint's JSON file (config, tokenizer, index) over this is refused unread (the largest real one is ~10 MB).
MAX_JSON_BYTES = 64 * 1024 * 1024
# Deeper JSON nesting than this is refused (real configs nest 3 levels).
MAX_JSON_DEPTH = 32


class CheckpointError(ValueError):
    """A checkpoint file missing, malformed, outside its directory or not fitting the model (named in the message)."""


def checkpoint_file(directory, name, what="file"):
    """`directory / name` after checking it stays inside the checkpoint (symlinks followed only within it)."""
    directory = Path(directory)
    if not isinstance(name, (str, os.PathLike)):
        raise CheckpointError(f"{directory}: {what} is named by a {type(name).__name__}, expected a file name.")
    shown, name = directory / name, os.fspath(name)
    if "\x00" in name or "\x00" in os.fspath(directory):
        raise CheckpointError(f"{shown!r}: a file name with a NUL byte ({what}).")
    if os.path.isabs(name):
        raise CheckpointError(f"{directory}: {what} {name!r} is an absolute path; it must be a file of the checkpoint.")
    # Every file resolves into the directory, or for a Hugging Face cache snapshot (`models--X/snapshots/REV`, its
    # files symlinks into `models--X/blobs`) into the repository folder.
    root = Path(os.path.realpath(directory))
    if root.parent.name == "snapshots" and (root.parent.parent / "blobs").is_dir():
        root = root.parent.parent
    try:
        resolved = Path(os.path.realpath(directory / name))
        inside = resolved == root or root in resolved.parents
        exists = resolved.is_file()
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) else error
        raise CheckpointError(f"{shown}: cannot be opened as the {what} ({type(error).__name__}: {reason}).") from None
    if not inside:
        raise CheckpointError(
            f"{shown}: the {what} leaves the checkpoint directory {directory} (through '..', an absolute path or a "
            "symlink); only files inside it are read."
        )
    if not exists:
        if (directory / name).exists() or resolved.exists():
            raise CheckpointError(f"{shown}: the {what} is not a regular file.")
        raise CheckpointError(f"{shown}: missing {what}.")
    return directory / name


def is_checkpoint_file(directory, name):
    """Whether `directory / name` is a file (a file that leaves the checkpoint counts, so that reading it refuses)."""
    try:
        return (Path(directory) / name).is_file() or (Path(directory) / name).is_symlink()
    except (OSError, ValueError):
        return False


def to_float32(value, name, source):
    """`value` (bfloat16 as an ml_dtypes array, float16, float32 or float64) as float32, as the module says."""
    dtype = np.dtype(value.dtype)
    if dtype.name == "bfloat16":  # ml_dtypes, e.g. from jax or a user's arrays
        return np.asarray(value).astype(np.float32)
    if dtype in (np.float16, np.float32):
        return value.astype(np.float32, copy=False)
    if dtype == np.float64:
        finite = value[np.isfinite(value)]
        if finite.size and np.abs(finite).max() > FLOAT32_MAX:
            raise CheckpointError(
                f"{source}: weight '{name}' holds {np.abs(finite).max():.3g}, beyond float32's range."
            )
        return value.astype(np.float32)
    raise CheckpointError(f"{source}: weight '{name}' has dtype {dtype}, expected a float type.")


def _safetensors_error(path, error):
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    return CheckpointError(f"{path}: corrupt safetensors header or data ({message}; file truncated or corrupt).")


def _identity(stat):
    """What tells a file apart from one replaced or rewritten under the same name (the change time too: a
    writer can set the modification time back, not that)."""
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def read_safetensors(path):
    """`{name: SafetensorsTensor}` from one safetensors file (header only: no tensor is read yet)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    size = path.stat().st_size
    if size < 8:
        raise CheckpointError(f"{path}: not a safetensors file (only {size} bytes).")
    try:
        with open(path, "rb") as f:
            identity = _identity(os.fstat(f.fileno()))
            # safe_open validates the header (offsets contiguous and inside the file, shapes matching byte
            # counts); the offsets come from the same header, read from the same file.
            with safe_open(os.fspath(path), framework="numpy") as checked:
                entries = {name: checked.get_slice(name) for name in checked.keys()}  # noqa: SIM118 (not a dict)
            if _identity(os.stat(path)) != identity:
                raise CheckpointError(f"{path}: the file changed while its header was read.")
            header_size = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(header_size))
        tensors = {}
        for name, entry in entries.items():
            dtype_name, shape = entry.get_dtype(), tuple(int(d) for d in entry.get_shape())
            if dtype_name not in FLOAT_SAFETENSORS_DTYPES:
                raise CheckpointError(f"{path}: weight '{name}' has dtype {dtype_name}, expected a float type.")
            start, end = header[name]["data_offsets"]
            stored = np.dtype(SAFETENSORS_NUMPY_DTYPES[dtype_name])
            if end - start != stored.itemsize * math.prod(shape):
                raise CheckpointError(f"{path}: weight '{name}' holds {end - start} bytes, not its shape's.")
            tensors[name] = SafetensorsTensor(path, name, dtype_name, shape, 8 + header_size + start, identity)
    except CheckpointError:
        raise
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, OverflowError, MemoryError) as error:
        raise _safetensors_error(path, error) from None
    return tensors


class SafetensorsTensor:
    """One tensor of a safetensors file (`shape` from the header), read only when asked for and not kept:
    `np.asarray` gives a float32 copy of its own; `mapped()` a float32 view of the file's bytes where they are
    float32 (a copy-on-write memory map), for a loader that copies them into a model at once. Either refuses a
    file replaced or rewritten since its header was read (its offsets would point into other data)."""

    def __init__(self, path, name, stored_dtype, shape, offset, identity):
        self.path, self.name, self.stored_dtype, self.shape = path, name, stored_dtype, shape
        self.offset, self.identity = offset, identity
        self.dtype = np.dtype(np.float32)
        self.ndim = len(shape)

    def _stored(self):
        stored = np.dtype(SAFETENSORS_NUMPY_DTYPES[self.stored_dtype])
        try:
            with open(self.path, "rb") as f:
                if _identity(os.fstat(f.fileno())) != self.identity:
                    raise CheckpointError(
                        f"{self.path}: the file changed since its header was read (reading '{self.name}'); "
                        "load it again."
                    )
                if math.prod(self.shape) == 0:  # mmap cannot map zero bytes
                    return np.zeros(self.shape, stored)
                return np.memmap(f, dtype=stored, mode="c", offset=self.offset, shape=self.shape).view(np.ndarray)
        except CheckpointError:
            raise
        except (OSError, ValueError) as error:
            raise _safetensors_error(self.path, error) from None

    def mapped(self):
        """The tensor as float32: a view of the file where it is stored as float32 (valid while the file is
        unchanged: copy it, don't keep it), otherwise a widened or narrowed array."""
        raw = self._stored()
        if self.stored_dtype == "BF16":  # bfloat16 is float32's upper half: widening is exact
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        return to_float32(raw, self.name, self.path)

    def __array__(self, dtype=None, copy=None):
        value = self.mapped()
        if self.stored_dtype == "F32":
            value = np.array(value, copy=True)
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
        if torch.is_floating_point(tensor) and tensor.dtype == torch.bfloat16:  # numpy has no bfloat16
            tensor = tensor.float()
        tensors[name] = to_float32(tensor.numpy(), name, path) if torch.is_floating_point(tensor) else tensor.numpy()
    return tensors


def _read_index(directory, index_name, reader):
    index_path = checkpoint_file(directory, index_name, "shard index")
    weight_map = read_json(index_path, "shard index").get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(
            f"{index_path}: 'weight_map' is {type(weight_map).__name__}, "
            "expected an object of weight name -> shard file."
        )
    for name, shard in weight_map.items():
        if not isinstance(shard, str) or not shard:
            raise CheckpointError(
                f"{index_path}: weight_map['{name:.80}'] is {shard!r:.80}, expected a shard file name."
            )
    # Every shard name is checked before any shard is read.
    shards = {shard: checkpoint_file(directory, shard, f"shard named by {index_name}") for shard in weight_map.values()}
    tensors = {}
    for shard, shard_path in sorted(shards.items()):
        for name, value in reader(shard_path).items():
            if weight_map.get(name) != shard:
                raise CheckpointError(
                    f"{shard_path}: holds '{name:.80}', which the index puts in {weight_map.get(name)!r:.80}."
                )
            tensors[name] = value
    missing = sorted(set(weight_map) - set(tensors))
    if missing:
        raise CheckpointError(f"{index_path}: lists weight(s) no shard holds: {[m[:80] for m in missing[:5]]}.")
    return tensors


def read_state_dict(directory):
    """`{hf_name: float32 array}` without buffers such as `position_ids`, safetensors preferred over torch pickles."""
    directory = Path(directory)
    if is_checkpoint_file(directory, SAFETENSORS_NAME):
        tensors = read_safetensors(checkpoint_file(directory, SAFETENSORS_NAME, "weights file"))
    elif is_checkpoint_file(directory, SAFETENSORS_INDEX_NAME):
        tensors = _read_index(directory, SAFETENSORS_INDEX_NAME, read_safetensors)
    elif is_checkpoint_file(directory, PYTORCH_NAME):
        tensors = read_torch_bin(checkpoint_file(directory, PYTORCH_NAME, "weights file"))
    elif is_checkpoint_file(directory, PYTORCH_INDEX_NAME):
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


def read_json(path, what="file", directory=None):
    """A JSON object from `path` (inside `directory` when given), at most MAX_JSON_BYTES and MAX_JSON_DEPTH deep."""
    path = checkpoint_file(directory, path, what) if directory is not None else Path(path)
    try:
        if not path.is_file():
            raise CheckpointError(f"{path}: missing {what}.")
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise CheckpointError(
                f"{path}: the {what} is {size} bytes, more than the {MAX_JSON_BYTES} a JSON file may be."
            )
        with open(path, "rb") as f:
            data = f.read(MAX_JSON_BYTES + 1)
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read the {what} ({error.strerror or error}).") from None
    try:
        value = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise CheckpointError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}).") from None
    except RecursionError:
        raise CheckpointError(f"{path}: JSON nested deeper than {MAX_JSON_DEPTH} levels.") from None
    except ValueError as error:  # invalid JSON, or e.g. an integer of more digits than Python converts
        raise CheckpointError(f"{path}: not valid JSON ({error}).") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(value).__name__}.")
    stack = [(value, 1)]  # iterative: no recursion
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise CheckpointError(f"{path}: JSON nested deeper than {MAX_JSON_DEPTH} levels.")
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return value


def write_json(path, value):
    Path(path).write_text(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
