"""Golden files: HDF5 reference outputs written by `tools/make_goldens.py` only.

Layout of one file (one case):
  root attributes   provenance: schema_version, case_id, kind, generator,
                    library versions, seed, dtype, device, attn_implementation
  /config           the Hugging Face config (or tokenizer options) as JSON text
  /inputs/<name>    int32 arrays, or texts (UTF-8 bytes, NUL-safe)
  /outputs/<name>   arrays with attributes atol, rtol, tolerance_reason and
                    optionally real_token_mask (the input naming real tokens)
  /weights/<hf name> float32 arrays in Hugging Face layout (tiny cases)

`goldens/MANIFEST.json` lists every case with a digest of its content (not of
the file bytes, which HDF5 does not keep stable) and its provenance. Reading a
case checks it against the manifest, so a tampered, stale-by-hand or missing
golden is refused instead of silently trusted.
"""

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

SCHEMA_VERSION = 1
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GOLDENS_DIR = REPO_ROOT / "goldens"
MANIFEST_NAME = "MANIFEST.json"
TEXT_DTYPE = h5py.vlen_dtype(np.uint8)
# A gradient output (kind "gradients") is compared relative to its norm: its
# atol is this times the L2 norm of that gradient tensor.
GRADIENT_RELATIVE_TOLERANCE = 1e-5


class GoldenError(Exception):
    """A golden is missing, unreadable, or does not match the manifest."""


@dataclass
class GoldenOutput:
    value: np.ndarray
    atol: float
    rtol: float
    tolerance_reason: str
    real_token_mask: str | None = None


@dataclass
class Golden:
    case_id: str
    kind: str
    provenance: dict
    config: dict
    inputs: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    weights: dict = field(default_factory=dict)


def goldens_dir(path=None):
    return Path(path or os.environ.get("DISTILBERT_HUB_GOLDENS") or DEFAULT_GOLDENS_DIR)


# --- texts --------------------------------------------------------------------


def _encode_texts(texts):
    data = np.empty(len(texts), dtype=TEXT_DTYPE)
    for i, text in enumerate(texts):
        data[i] = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    return data


def _decode_texts(data):
    return [bytes(np.asarray(item, dtype=np.uint8)).decode("utf-8", "surrogatepass") for item in data]


def is_texts(value):
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def pad_rows(rows, fill, width=0, tail=()):
    """Ragged rows as one int32 array `[len(rows), max(width, longest)] + tail`,
    filled with `fill`: the layout of ragged outputs (ids, offsets) in goldens."""
    width = max([width] + [len(row) for row in rows] + [1])
    out = np.full((len(rows), width) + tuple(tail), fill, dtype=np.int32)
    for i, row in enumerate(rows):
        if len(row):
            out[i, : len(row)] = row
    return out


# --- writing (tools/make_goldens.py only) --------------------------------------


def write_golden(path, golden):
    with h5py.File(path, "w", track_order=True) as f:
        for key, value in sorted(golden.provenance.items()):
            f.attrs[key] = value
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["case_id"] = golden.case_id
        f.attrs["kind"] = golden.kind
        f.create_dataset("config", data=json.dumps(golden.config, sort_keys=True))
        inputs = f.create_group("inputs")
        for name, value in sorted(golden.inputs.items()):
            if is_texts(value):
                inputs.create_dataset(name, data=_encode_texts(value)).attrs["encoding"] = "utf-8"
            else:
                inputs.create_dataset(name, data=np.asarray(value))
        outputs = f.create_group("outputs")
        for name, output in sorted(golden.outputs.items()):
            dataset = outputs.create_dataset(name, data=np.asarray(output.value))
            dataset.attrs["atol"] = float(output.atol)
            dataset.attrs["rtol"] = float(output.rtol)
            dataset.attrs["tolerance_reason"] = output.tolerance_reason
            if output.real_token_mask:
                dataset.attrs["real_token_mask"] = output.real_token_mask
        weights = f.create_group("weights")
        for name, value in sorted(golden.weights.items()):
            weights.create_dataset(name, data=np.asarray(value, dtype=np.float32))


# --- reading ------------------------------------------------------------------


def _attr(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    return value


def _walk(group, prefix=""):
    for name, item in group.items():
        if isinstance(item, h5py.Group):
            yield from _walk(item, f"{prefix}{name}/")
        else:
            yield f"{prefix}{name}", item


def read_golden_file(path):
    """Read one golden file, without checking it against the manifest."""
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as error:
        raise GoldenError(f"{path}: not a readable HDF5 golden ({error}).") from None
    with f:
        attrs = {key: _attr(value) for key, value in f.attrs.items()}
        if attrs.get("schema_version") != SCHEMA_VERSION:
            raise GoldenError(
                f"{path}: schema_version {attrs.get('schema_version')!r}, this harness reads "
                f"{SCHEMA_VERSION}. Regenerate with tools/make_goldens.py."
            )
        for required in ("config", "inputs", "outputs"):
            if required not in f:
                raise GoldenError(f"{path}: no '/{required}' in the golden.")
        golden = Golden(
            case_id=attrs.pop("case_id"),
            kind=attrs.pop("kind"),
            provenance=attrs,
            config=json.loads(_attr(f["config"][()])),
        )
        for name, dataset in _walk(f["inputs"]):
            if dataset.attrs.get("encoding") == "utf-8":
                golden.inputs[name] = _decode_texts(dataset[()])
            else:
                golden.inputs[name] = dataset[()]
        for name, dataset in _walk(f["outputs"]):
            mask = dataset.attrs.get("real_token_mask")
            golden.outputs[name] = GoldenOutput(
                value=dataset[()],
                atol=float(dataset.attrs["atol"]),
                rtol=float(dataset.attrs["rtol"]),
                tolerance_reason=_attr(dataset.attrs["tolerance_reason"]),
                real_token_mask=_attr(mask) if mask is not None else None,
            )
        if "weights" in f:
            golden.weights = {name: dataset[()] for name, dataset in _walk(f["weights"])}
    return golden


# --- content digest and manifest ----------------------------------------------


def _hash_array(h, name, value):
    if is_texts(value):
        h.update(f"{name}|texts|{len(value)}".encode())
        for text in value:
            data = text.encode("utf-8", "surrogatepass")
            h.update(len(data).to_bytes(8, "little") + data)
        return
    value = np.ascontiguousarray(value)
    h.update(f"{name}|{value.dtype.str}|{value.shape}".encode())
    h.update(value.tobytes())


def content_digest(golden):
    """sha256 of a golden's content: attributes, config, every array's bytes."""
    h = hashlib.sha256()
    header = {
        "case_id": golden.case_id,
        "kind": golden.kind,
        "provenance": golden.provenance,
        "config": golden.config,
        "tolerances": {
            name: [out.atol, out.rtol, out.tolerance_reason, out.real_token_mask]
            for name, out in sorted(golden.outputs.items())
        },
    }
    h.update(json.dumps(header, sort_keys=True, default=str).encode())
    for group, items in (("inputs", golden.inputs), ("weights", golden.weights)):
        for name, value in sorted(items.items()):
            _hash_array(h, f"{group}/{name}", value)
    for name, output in sorted(golden.outputs.items()):
        _hash_array(h, f"outputs/{name}", output.value)
    return "sha256:" + h.hexdigest()


def manifest_entry(golden, file_name):
    return {
        "file": file_name,
        "kind": golden.kind,
        "tier": golden.provenance.get("tier", "default"),
        "digest": content_digest(golden),
        "provenance": golden.provenance,
    }


def write_manifest(directory, entries):
    manifest = {"schema_version": SCHEMA_VERSION, "cases": dict(sorted(entries.items()))}
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    (Path(directory) / MANIFEST_NAME).write_text(text)


def read_manifest(directory=None):
    directory = goldens_dir(directory)
    path = directory / MANIFEST_NAME
    if not path.is_file():
        raise GoldenError(
            f"{path}: no golden manifest. Goldens come only from "
            "`python tools/make_goldens.py`; this harness never creates them."
        )
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise GoldenError(
            f"{path}: not valid JSON ({error}); regenerate with `python tools/make_goldens.py`."
        ) from None
    if not isinstance(manifest, dict) or manifest.get("schema_version") != SCHEMA_VERSION:
        found = manifest.get("schema_version") if isinstance(manifest, dict) else type(manifest).__name__
        raise GoldenError(f"{path}: schema_version {found!r}, expected {SCHEMA_VERSION}.")
    cases = manifest.get("cases")
    if not isinstance(cases, dict) or not cases:
        raise GoldenError(f"{path}: lists no cases; a gate that checks nothing must not pass.")
    for case_id, entry in cases.items():
        if not isinstance(entry, dict) or not {"file", "kind", "digest"} <= set(entry):
            raise GoldenError(f"{path}: the entry of case '{case_id}' lacks file, kind or digest.")
    return cases


def verify_goldens_directory(directory=None, registered=None):
    """Problems that make a parity run meaningless: files in the folder the
    manifest does not list, and (given the registry's ids) cases registered
    but not in the manifest or listed but no longer registered."""
    directory = goldens_dir(directory)
    cases = read_manifest(directory)
    problems = []
    listed_files = {entry["file"] for entry in cases.values()} | {MANIFEST_NAME}
    for path in sorted(directory.iterdir()):
        if path.name not in listed_files and not path.name.startswith("."):
            problems.append(f"{path}: not listed in {MANIFEST_NAME} (goldens come only from tools/make_goldens.py)")
    if registered is not None:
        for case_id in sorted(set(registered) - set(cases)):
            problems.append(f"case '{case_id}' is registered in tools/golden_cases but missing from {MANIFEST_NAME}")
        for case_id in sorted(set(cases) - set(registered)):
            problems.append(f"case '{case_id}' is in {MANIFEST_NAME} but not registered in tools/golden_cases")
    return problems


def case_ids(directory=None, kind=None, tiers=("default",)):
    """Ids of the manifest's cases of these tiers (and of one kind), sorted."""
    cases = read_manifest(directory)
    return sorted(
        case_id
        for case_id, entry in cases.items()
        if kind in (None, entry["kind"]) and entry.get("tier", "default") in tiers
    )


def load_case(case_id, directory=None):
    """Read a case listed in the manifest and verify its content digest."""
    directory = goldens_dir(directory)
    cases = read_manifest(directory)
    if case_id not in cases:
        raise GoldenError(
            f"case '{case_id}' is not in {directory / MANIFEST_NAME}. Add it to the case "
            "registry in tools/make_goldens.py and run `python tools/make_goldens.py --only "
            f"{case_id}`."
        )
    entry = cases[case_id]
    path = directory / entry["file"]
    if not path.is_file():
        raise GoldenError(
            f"golden for case '{case_id}' is listed in the manifest but {path} is missing. "
            f"Regenerate it with `python tools/make_goldens.py --only {case_id}`."
        )
    golden = read_golden_file(path)
    if golden.case_id != case_id:
        raise GoldenError(f"{path}: holds case '{golden.case_id}', the manifest says '{case_id}'.")
    digest = content_digest(golden)
    if digest != entry["digest"]:
        raise GoldenError(
            f"{path}: content digest {digest} does not match the manifest's {entry['digest']}. "
            "The golden was edited or corrupted; goldens change only through "
            "`python tools/make_goldens.py`."
        )
    return golden
