"""Hostile and broken files for tests/test_hostile_files.py: each case is a
factory that damages a copy of a good checkpoint or preset and returns the
call that must refuse it, with the error class and a phrase the message must
hold. `OUTSIDE` files stand for what an attacker wants read: their content
must never appear in an error, and they must never change.

Cases are data (`CASES`), so a new hostile file is one line.
"""

import json
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

import distilbert_hub as hub
from distilbert_hub.convert.hf_checkpoint import CheckpointError, write_safetensors
from harness.golden import REPO_ROOT

CHECKPOINTS = REPO_ROOT / "harness" / "fixtures" / "checkpoints"
KERAS_HUB = REPO_ROOT / "harness" / "fixtures" / "keras_hub_presets"
SECRET = "SECRET-3f9a-outside-the-checkpoint"
OWN_EMBEDDING = "layers/distil_bert_embedding/vars/0"
OWN_QUERY = "layers/distil_bert_transformer_layer/attention/query_dense/vars/0"
OWN_KEY = "layers/distil_bert_transformer_layer/attention/key_dense/vars/0"
HUB_EMBEDDING = "layers/token_and_position_embedding/token_embedding/vars/0"
HUB_QUERY = "layers/transformer_encoder/_self_attention_layer/query_dense/vars/0"
HUB_KEY = "layers/transformer_encoder/_self_attention_layer/key_dense/vars/0"


@dataclass(frozen=True)
class Case:
    id: str
    make: object  # (Workspace) -> a zero-argument call that must raise
    error: type
    phrase: str
    kind: str  # the case class


class Workspace:
    """A temporary folder with `outside/` (secret files) beside the checkpoint copies."""

    def __init__(self, root, own_presets):
        self.root = Path(root)
        self.outside = self.root / "outside"
        self.outside.mkdir()
        (self.outside / "secret.txt").write_text(f"{SECRET}\n" * 4)
        write_safetensors(self.outside / "secret.safetensors", {"secret": np.full(4, 7.0, np.float32)})
        with h5py.File(self.outside / "secret.h5", "w") as f:
            f["data"] = np.full((22, 8), 7.0, np.float32)
        self.own_presets = own_presets

    def checkpoint(self, name="backbone"):
        target = self.root / f"checkpoint_{name}"
        shutil.copytree(CHECKPOINTS / name, target)
        return target

    def keras_hub(self, name="text_classifier"):
        target = self.root / f"keras_hub_{name}"
        shutil.copytree(KERAS_HUB / name, target)
        return target

    def own(self, name="classifier"):
        target = self.root / f"own_{name}"
        shutil.copytree(self.own_presets[name], target)
        return target

    def snapshot(self):
        """Content of everything outside the checkpoints, to prove it untouched."""
        return {str(p): p.read_bytes() for p in sorted(self.outside.rglob("*")) if p.is_file()}


# --- file edits ------------------------------------------------------------------


def edit_json(path, **changes):
    value = json.loads(Path(path).read_text())
    value.update(changes)
    Path(path).write_text(json.dumps(value))


def edit_json_at(path, keys, value):
    data = json.loads(Path(path).read_text())
    node = data
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    Path(path).write_text(json.dumps(data))


def task_config_with_classes(directory, num_classes):
    """The preset's task config with `num_classes` changed and its label
    names renumbered to match, so that only the weights disagree."""
    config = json.loads((Path(directory) / "task.json").read_text())["config"]
    labels = config.get("id2label")
    if labels is not None:
        config["id2label"] = {str(i): f"LABEL_{i}" for i in range(num_classes)}
    return config | {"num_classes": num_classes}


def drop_json_key(path, *keys):
    data = json.loads(Path(path).read_text())
    node = data
    for key in keys[:-1]:
        node = node[key]
    del node[keys[-1]]
    Path(path).write_text(json.dumps(data))


def sparse_file(path, size, head=b"{"):
    """A file of `size` bytes that costs no disk (a hole after `head`)."""
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)


def link_outside(path, target):
    Path(path).unlink(missing_ok=True)
    os.symlink(target, path)


def safetensors_bytes(header, data=b"", header_size=None):
    raw = json.dumps(header).encode() if not isinstance(header, bytes) else header
    return struct.pack("<Q", len(raw) if header_size is None else header_size) + raw + data


def f32(n):
    return np.arange(n, dtype=np.float32).tobytes()


def h5_replace(path, name, make):
    """Replace dataset `name` of the HDF5 file at `path` by `make(file, name, old_array)`."""
    with h5py.File(path, "r+") as f:
        old = np.asarray(f[name])
        del f[name]
        make(f, name, old)


def external_storage(outside):
    def make(f, name, old):
        with open(outside, "wb") as out:
            out.write(np.full(old.shape, 7.0, old.dtype).tobytes())
        f.create_dataset(name, shape=old.shape, dtype=old.dtype, external=[(os.fspath(outside), 0, old.nbytes)])

    return make


def external_link(outside_h5):
    def make(f, name, old):
        f[name] = h5py.ExternalLink(os.fspath(outside_h5), "/data")

    return make


def soft_link(to):
    def make(f, name, old):
        f[name] = h5py.SoftLink(f"/{to}")

    return make


def huge_chunked(f, name, old):
    f.create_dataset(name, shape=(2**29,), dtype="float32", chunks=(4096,))  # declares 2 GiB, stores nothing


def wrong_size(f, name, old):
    f[name] = np.zeros((old.shape[0] + 1, *old.shape[1:]), old.dtype)


def with_value(value, dtype=None):
    def make(f, name, old):
        new = old.astype(dtype or old.dtype)
        new.flat[3] = value
        f[name] = new

    return make


def nested(depth):
    return "[" * depth + "]" * depth


# --- calls -----------------------------------------------------------------------


def backbone(directory):
    return lambda: hub.DistilBertBackbone.from_preset(str(directory))


def classifier(directory, **kwargs):
    return lambda: hub.DistilBertTextClassifier.from_preset(str(directory), **kwargs)


def tokenizer(directory, **kwargs):
    return lambda: hub.DistilBertTokenizer.from_preset(str(directory), **kwargs)


def then(edit, call):
    """Apply `edit(directory)` to a fresh copy and return `call(directory)`."""

    def make(directory):
        edit(directory)
        return call(directory)

    return make


def hf(edit, call=backbone, name="backbone"):
    return lambda ws: then(edit, call)(ws.checkpoint(name))


def own(edit, call=classifier, name="classifier"):
    return lambda ws: then(edit, call)(ws.own(name))


def keras_hub(edit, call=classifier, name="text_classifier"):
    return lambda ws: then(edit, call)(ws.keras_hub(name))


def with_ws(make):
    """A factory that needs the workspace (for outside files)."""
    return make


def vocab_only(tokens_text):
    """A checkpoint whose tokenizer is only `vocab.txt` (bytes)."""

    def make(ws):
        directory = ws.checkpoint()
        for name in ("tokenizer.json", "tokenizer_config.json"):
            (directory / name).unlink()
        (directory / "vocab.txt").write_bytes(tokens_text)
        return tokenizer(directory)

    return make


def safetensors_case(raw):
    def make(ws):
        directory = ws.checkpoint()
        (directory / "model.safetensors").write_bytes(raw)
        return backbone(directory)

    return make


# --- the safetensors headers (also the differential test's corpus) ----------------

A4 = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
MALFORMED_SAFETENSORS = {
    "overlapping offsets": safetensors_bytes({"a": A4, "b": A4}, f32(4)),
    "duplicate header keys": struct.pack("<Q", 124)
    + b'{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}'
    + b"  "
    + f32(4),
    "gap between tensors": safetensors_bytes(
        {"a": A4, "b": {"dtype": "F32", "shape": [4], "data_offsets": [20, 36]}}, f32(9)
    ),
    "data past the offsets": safetensors_bytes({"a": A4}, f32(5)),
    "offsets past the data": safetensors_bytes({"a": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}}, f32(4)),
    "offsets disagree with the shape": safetensors_bytes(
        {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}}, f32(4)
    ),
    "begin after end": safetensors_bytes({"a": {"dtype": "F32", "shape": [0], "data_offsets": [16, 0]}}, f32(4)),
    "negative offset": safetensors_bytes({"a": {"dtype": "F32", "shape": [4], "data_offsets": [-16, 0]}}, f32(4)),
    "offsets as strings": safetensors_bytes({"a": {"dtype": "F32", "shape": [4], "data_offsets": ["0", "16"]}}, f32(4)),
    "three offsets": safetensors_bytes({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8, 16]}}, f32(4)),
    "offsets missing": safetensors_bytes({"a": {"dtype": "F32", "shape": [4]}}, f32(4)),
    "negative shape": safetensors_bytes({"a": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}, f32(4)),
    "shape as a string": safetensors_bytes({"a": {"dtype": "F32", "shape": "4", "data_offsets": [0, 16]}}, f32(4)),
    "shape of floats": safetensors_bytes({"a": {"dtype": "F32", "shape": [4.0], "data_offsets": [0, 16]}}, f32(4)),
    "shape overflowing 64 bits": safetensors_bytes(
        {"a": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 16]}}, f32(4)
    ),
    "unknown dtype": safetensors_bytes({"a": {"dtype": "F33", "shape": [4], "data_offsets": [0, 16]}}, f32(4)),
    "dtype missing": safetensors_bytes({"a": {"shape": [4], "data_offsets": [0, 16]}}, f32(4)),
    "entry not an object": safetensors_bytes({"a": [1, 2, 3]}, f32(4)),
    "header a JSON list": safetensors_bytes([1, 2], f32(4)),
    "header not JSON": safetensors_bytes(b"{not json!!", f32(4)),
    "header not UTF-8": safetensors_bytes(b'{"\xff\xfe":1}', f32(4)),
    "header size past the file": safetensors_bytes({"a": A4}, f32(4), header_size=10**6),
    "header size 2**63": safetensors_bytes({"a": A4}, f32(4), header_size=2**63),
    "header size 0": safetensors_bytes(b"", f32(4), header_size=0),
    "metadata not strings": safetensors_bytes({"__metadata__": {"format": 5}, "a": A4}, f32(4)),
    "metadata a list": safetensors_bytes({"__metadata__": ["pt"], "a": A4}, f32(4)),
    "5 bytes": b"\x01\x02\x03\x04\x05",
    "empty file": b"",
    "only the size": struct.pack("<Q", 2),
    "header cut short": safetensors_bytes({"a": A4}, b"")[:20],
    "extra unknown field": safetensors_bytes(
        {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16], "extra": 1}}, f32(4)
    ),
    "deeply nested header": safetensors_bytes(b'{"a":' + nested(5000).encode() + b"}", f32(4)),
}
# Headers the library accepts: our refusals beyond it (non-float weights) are ours.
INTEGER_WEIGHT = safetensors_bytes({"a": {"dtype": "I32", "shape": [4], "data_offsets": [0, 16]}}, f32(4))


# --- the table -------------------------------------------------------------------


def _cases():
    cases = []

    def add(id, make, error, phrase, kind):
        cases.append(Case(id, make, error, phrase, kind))

    # 1. Reads outside the checkpoint.
    kind = "containment"
    index_name = "model.safetensors.index.json"

    def index_shard(shard):
        def edit(directory):
            index = json.loads((directory / index_name).read_text())
            first = sorted(index["weight_map"])[0]
            index["weight_map"][first] = shard
            (directory / index_name).write_text(json.dumps(index))

        return edit

    add(
        "index names a ../ shard",
        lambda ws: hf(index_shard("../outside/secret.safetensors"), name="backbone_sharded")(ws),
        CheckpointError,
        "leaves the checkpoint directory",
        kind,
    )
    add(
        "index names an absolute shard",
        lambda ws: hf(index_shard(str(ws.outside / "secret.safetensors")), name="backbone_sharded")(ws),
        CheckpointError,
        "is an absolute path",
        kind,
    )
    add(
        "index names a shard through a symlinked folder",
        lambda ws: hf(
            lambda d: (os.symlink(ws.outside, d / "sub"), index_shard("sub/secret.safetensors")(d)),
            name="backbone_sharded",
        )(ws),
        CheckpointError,
        "leaves the checkpoint directory",
        kind,
    )
    add(
        "index names a missing shard",
        lambda ws: hf(index_shard("model-00009-of-00009.safetensors"), name="backbone_sharded")(ws),
        CheckpointError,
        "missing shard",
        kind,
    )
    add(
        "index names the secret text as a shard",
        lambda ws: hf(index_shard("../outside/secret.txt"), name="backbone_sharded")(ws),
        CheckpointError,
        "leaves the checkpoint directory",
        kind,
    )
    add(
        "index shard name with a NUL byte",
        lambda ws: hf(index_shard("model\x00.safetensors"), name="backbone_sharded")(ws),
        CheckpointError,
        "NUL byte",
        kind,
    )
    add(
        "index shard name too long",
        lambda ws: hf(index_shard("x" * 5000 + ".safetensors"), name="backbone_sharded")(ws),
        CheckpointError,
        "cannot be opened",
        kind,
    )
    add(
        "index shard is a directory",
        lambda ws: hf(
            lambda d: ((d / "adir").mkdir(), index_shard("adir")(d)),
            name="backbone_sharded",
        )(ws),
        CheckpointError,
        "not a regular file",
        kind,
    )
    for name in ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"):
        target = {"model.safetensors": "secret.safetensors"}.get(name, "secret.txt")
        add(
            f"{name} is a symlink outside",
            lambda ws, name=name, target=target: hf(
                lambda d: link_outside(d / name, ws.outside / target), call=classifier_with_two
            )(ws),
            CheckpointError,
            "leaves the checkpoint directory",
            kind,
        )
    add(
        "vocab.txt is a symlink outside",
        lambda ws: then(
            lambda d: (
                (d / "tokenizer.json").unlink(),
                (d / "tokenizer_config.json").unlink(),
                link_outside(d / "vocab.txt", ws.outside / "secret.txt"),
            ),
            tokenizer,
        )(ws.checkpoint()),
        CheckpointError,
        "leaves the checkpoint directory",
        kind,
    )
    add(
        "pytorch_model.bin is a symlink outside",
        lambda ws: hf(
            lambda d: link_outside(d / "pytorch_model.bin", ws.outside / "secret.txt"), name="backbone_pytorch_bin"
        )(ws),
        CheckpointError,
        "leaves the checkpoint directory",
        kind,
    )
    asset = Path("assets") / "tokenizer" / "vocabulary.txt"
    for where, factory in (("own", own), ("KerasHub", keras_hub)):
        add(
            f"{where} preset vocabulary asset is a symlink outside",
            lambda ws, factory=factory: factory(lambda d: link_outside(d / asset, ws.outside / "secret.txt"))(ws),
            CheckpointError,
            "leaves the checkpoint directory",
            kind,
        )
        add(
            f"{where} preset assets folder is a symlink outside",
            lambda ws, factory=factory: factory(
                lambda d: (
                    shutil.rmtree(d / "assets"),
                    (ws.outside / "tokenizer").mkdir(exist_ok=True),
                    shutil.copy(ws.outside / "secret.txt", ws.outside / "tokenizer" / "vocabulary.txt"),
                    os.symlink(ws.outside, d / "assets"),
                )
            )(ws),
            CheckpointError,
            "leaves the checkpoint directory",
            kind,
        )
        add(
            f"{where} preset model.weights.h5 is a symlink outside",
            lambda ws, factory=factory: factory(
                lambda d: link_outside(d / "model.weights.h5", ws.outside / "secret.h5"), call=backbone
            )(ws),
            CheckpointError,
            "leaves the checkpoint directory",
            kind,
        )
        add(
            f"{where} preset task.json is a symlink outside",
            lambda ws, factory=factory: factory(lambda d: link_outside(d / "task.json", ws.outside / "secret.txt"))(ws),
            CheckpointError,
            "leaves the checkpoint directory",
            kind,
        )
    for where, factory, embedding, query, key in (
        ("own", own, OWN_EMBEDDING, OWN_QUERY, OWN_KEY),
        ("KerasHub", keras_hub, HUB_EMBEDDING, HUB_QUERY, HUB_KEY),
    ):
        add(
            f"{where} preset weights in HDF5 external storage",
            lambda ws, factory=factory, embedding=embedding: factory(
                lambda d: h5_replace(d / "model.weights.h5", embedding, external_storage(ws.outside / "raw.bin")),
                call=backbone,
            )(ws),
            CheckpointError,
            "HDF5 external storage",
            kind,
        )
        add(
            f"{where} preset weights through an HDF5 ExternalLink",
            lambda ws, factory=factory, embedding=embedding: factory(
                lambda d: h5_replace(d / "model.weights.h5", embedding, external_link(ws.outside / "secret.h5")),
                call=backbone,
            )(ws),
            CheckpointError,
            "external link",
            kind,
        )
        add(
            f"{where} preset weights through an HDF5 SoftLink",
            lambda ws, factory=factory, query=query, key=key: factory(
                lambda d: h5_replace(d / "model.weights.h5", query, soft_link(key)), call=backbone
            )(ws),
            CheckpointError,
            "soft link",
            kind,
        )
        task_prefix = "layers/distil_bert_backbone/" if factory is own else ""
        if factory is own:
            add(
                f"{where} task weights through an HDF5 SoftLink",
                lambda ws, factory=factory, query=query, key=key, prefix=task_prefix: factory(
                    lambda d: h5_replace(d / "task.weights.h5", prefix + query, soft_link(prefix + key))
                )(ws),
                CheckpointError,
                "soft link",
                kind,
            )

    # 2. Memory and time before validation.
    kind = "allocation"
    for key, value in (
        ("vocab_size", 2 * 10**7),
        ("vocab_size", 10**9),
        ("n_layers", 100000),
        ("n_heads", 10**6),
        ("dim", 10**6),
        ("hidden_dim", 10**8),
        ("max_position_embeddings", 10**9),
        ("vocab_size", 10**12),
    ):
        add(
            f"config {key}={value}",
            hf(lambda d, key=key, value=value: edit_json(d / "config.json", **{key: value})),
            CheckpointError,
            f"'{key}' is {value}, outside",
            kind,
        )
    add(
        "config within caps but past the parameter cap",
        hf(lambda d: edit_json(d / "config.json", vocab_size=900_000, dim=8000, n_heads=8)),
        CheckpointError,
        "parameters, more than",
        kind,
    )
    add(
        "config vocab_size disagrees with the weights",
        hf(lambda d: edit_json(d / "config.json", vocab_size=200_000)),
        CheckpointError,
        "the config does not fit the weights",
        kind,
    )
    add(
        "config n_layers disagrees with the weights",
        hf(lambda d: edit_json(d / "config.json", n_layers=40)),
        CheckpointError,
        "transformer layers, config.json says n_layers=40",
        kind,
    )
    add(
        "config hidden_dim disagrees with the weights",
        hf(lambda d: edit_json(d / "config.json", hidden_dim=30000)),
        CheckpointError,
        "the config does not fit the weights",
        kind,
    )
    add(
        "config num_labels 10**9",
        hf(
            lambda d: (edit_json(d / "config.json", num_labels=10**9), drop_json_key(d / "config.json", "id2label")),
            call=classifier,
            name="head_text_classifier",
        ),
        CheckpointError,
        "'num_labels' is 1000000000, outside",
        kind,
    )
    add(
        "config num_labels disagrees with the head",
        hf(
            lambda d: (edit_json(d / "config.json", num_labels=50000), drop_json_key(d / "config.json", "id2label")),
            call=classifier,
            name="head_text_classifier",
        ),
        CheckpointError,
        "'classifier.weight' has 3 rows",
        kind,
    )
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        add(
            f"{name} of 200 MB",
            hf(lambda d, name=name: sparse_file(d / name, 200 * 2**20), call=classifier_with_two),
            CheckpointError,
            "more than the",
            kind,
        )
    add(
        "vocab.txt of 200 MB",
        lambda ws: then(
            lambda d: (
                (d / "tokenizer.json").unlink(),
                (d / "tokenizer_config.json").unlink(),
                sparse_file(d / "vocab.txt", 200 * 2**20, b"[PAD]\n"),
            ),
            tokenizer,
        )(ws.checkpoint()),
        CheckpointError,
        "refused unread",
        kind,
    )
    add(
        "shard index of 200 MB",
        hf(lambda d: sparse_file(d / index_name, 200 * 2**20), name="backbone_sharded"),
        CheckpointError,
        "more than the",
        kind,
    )
    for depth in (40, 990, 100_000):
        add(
            f"config.json nested {depth} deep",
            hf(lambda d, depth=depth: (d / "config.json").write_text('{"a": ' + nested(depth) + "}")),
            CheckpointError,
            "nested deeper than",
            kind,
        )
    add(
        "tokenizer.json nested 100000 deep",
        hf(lambda d: (d / "tokenizer.json").write_text('{"a": ' + nested(100_000) + "}"), call=tokenizer),
        CheckpointError,
        "nested deeper than",
        kind,
    )
    add(
        "config.json with a 100000-digit integer",
        hf(lambda d: (d / "config.json").write_text('{"model_type": "distilbert", "dim": ' + "9" * 100_000 + "}")),
        CheckpointError,
        "not valid JSON",
        kind,
    )
    for where, factory, embedding in (("own", own, OWN_EMBEDDING), ("KerasHub", keras_hub, HUB_EMBEDDING)):
        add(
            f"{where} preset HDF5 declaring a 2 GiB dataset",
            lambda ws, factory=factory, embedding=embedding: factory(
                lambda d: h5_replace(d / "model.weights.h5", embedding, huge_chunked), call=backbone
            )(ws),
            CheckpointError,
            "refused before reading",
            kind,
        )
        add(
            f"{where} preset HDF5 dataset one row too many",
            lambda ws, factory=factory, embedding=embedding: factory(
                lambda d: h5_replace(d / "model.weights.h5", embedding, wrong_size), call=backbone
            )(ws),
            CheckpointError,
            "model.weights.h5",
            kind,
        )
        add(
            f"{where} preset config vocabulary_size 10**9",
            lambda ws, factory=factory: factory(
                lambda d: edit_json_at(d / "config.json", ["config", "vocabulary_size"], 10**9), call=backbone
            )(ws),
            CheckpointError,
            "'vocabulary_size' is 1000000000, outside",
            kind,
        )
        add(
            f"{where} preset config num_layers 100000",
            lambda ws, factory=factory: factory(
                lambda d: edit_json_at(d / "config.json", ["config", "num_layers"], 100000), call=backbone
            )(ws),
            CheckpointError,
            "'num_layers' is 100000, outside",
            kind,
        )
        add(
            f"{where} preset task.json num_classes 10**9",
            lambda ws, factory=factory: factory(
                lambda d: edit_json_at(d / "task.json", ["config", "num_classes"], 10**9)
            )(ws),
            CheckpointError,
            "'num_classes' is 1000000000, outside",
            kind,
        )
    add(
        "own preset config vocabulary_size disagrees with the weights",
        own(lambda d: edit_json_at(d / "config.json", ["config", "vocabulary_size"], 5000), call=backbone),
        CheckpointError,
        "model.weights.h5",
        kind,
    )
    add(
        "own preset task.json num_classes disagrees with the weights",
        own(lambda d: edit_json_at(d / "task.json", ["config"], task_config_with_classes(d, 7))),
        CheckpointError,
        "task.weights.h5",
        kind,
    )
    add(
        "own preset task.json num_classes disagrees with its id2label",
        own(lambda d: edit_json_at(d / "task.json", ["config", "num_classes"], 7)),
        CheckpointError,
        "id2label must name each of the 7 classes",
        kind,
    )

    # 3. safetensors: every refusal of the library is ours, naming the file.
    kind = "safetensors"
    for name, raw in MALFORMED_SAFETENSORS.items():
        # The one header the library accepts holds a weight no DistilBERT has.
        phrase = "unexpected weight 'a'" if name == "extra unknown field" else "model.safetensors"
        add(f"safetensors {name}", safetensors_case(raw), CheckpointError, phrase, kind)
    add("safetensors of integer weights", safetensors_case(INTEGER_WEIGHT), CheckpointError, "expected a float", kind)

    # 4. Silent results.
    kind = "silent"
    for key, value, phrase in (
        ("n_heads", True, "'n_heads' is True (bool), expected an integer"),
        ("dim", 32.0, "'dim' is 32.0 (float), expected an integer"),
        ("n_layers", 2.0, "'n_layers' is 2.0 (float)"),
        ("vocab_size", "90", "'vocab_size' is '90' (str)"),
        ("hidden_dim", None, "'hidden_dim' is None"),
        ("max_position_embeddings", [20], "'max_position_embeddings' is [20]"),
        ("n_heads", 3, "is not divisible by"),
        ("n_heads", 0, "'n_heads' is 0, outside"),
        ("dim", -32, "'dim' is -32, outside"),
        ("dropout", "0.1", "'dropout' is '0.1', expected a number"),
        ("attention_dropout", 1.5, "'attention_dropout' is 1.5"),
        ("activation", 5, "activation 5 is not supported"),
        ("activation", "swish", "activation 'swish' is not supported"),
        ("sinusoidal_pos_embds", "false", "'sinusoidal_pos_embds' is 'false'"),
        ("model_type", 5, "model_type is 5"),
    ):
        add(
            f"config {key}={value!r}",
            hf(lambda d, key=key, value=value: edit_json(d / "config.json", **{key: value})),
            CheckpointError,
            phrase,
            kind,
        )
    for policy in ("int32", "bool", "uint8"):
        add(
            f"own preset dtype {policy}",
            own(lambda d, policy=policy: edit_json_at(d / "config.json", ["config", "dtype"], policy), call=backbone),
            CheckpointError,
            f"'dtype' '{policy}' gives",
            kind,
        )
    add(
        "own preset dtype not a policy",
        own(lambda d: edit_json_at(d / "config.json", ["config", "dtype"], "float33"), call=backbone),
        CheckpointError,
        "is not a Keras dtype policy",
        kind,
    )
    add(
        "dtype argument int32",
        lambda ws: lambda: hub.DistilBertBackbone.from_preset(str(CHECKPOINTS / "backbone"), dtype="int32"),
        CheckpointError,
        "'dtype' 'int32' gives",
        kind,
    )
    add(
        "own task preset whose model and task weights disagree",
        own(lambda d: h5_replace(d / "model.weights.h5", OWN_QUERY, with_value(0.5))),
        CheckpointError,
        "disagree on the backbone",
        kind,
    )
    for where, factory, name in (("own", own, OWN_EMBEDDING), ("KerasHub", keras_hub, HUB_EMBEDDING)):
        for label, value, dtype in (("NaN", np.nan, None), ("inf", np.inf, None), ("1e300", 1e300, "float64")):
            add(
                f"{where} preset weight holding {label}",
                lambda ws, factory=factory, name=name, value=value, dtype=dtype: factory(
                    lambda d: h5_replace(d / "model.weights.h5", name, with_value(value, dtype)), call=backbone
                )(ws),
                (CheckpointError, ValueError),
                "NaN or infinity" if label != "1e300" else "",
                kind,
            )
    add(
        "tokenizer_config do_lower_case 'false'",
        hf(lambda d: edit_json(d / "tokenizer_config.json", do_lower_case="false"), call=tokenizer),
        CheckpointError,
        "'do_lower_case' is 'false' (str), expected true or false",
        kind,
    )
    add(
        "tokenizer_config do_lower_case 1",
        hf(lambda d: edit_json(d / "tokenizer_config.json", do_lower_case=1), call=tokenizer),
        CheckpointError,
        "'do_lower_case' is 1 (int)",
        kind,
    )
    add(
        "tokenizer_config split_special_tokens 'no'",
        hf(lambda d: edit_json(d / "tokenizer_config.json", split_special_tokens="no"), call=tokenizer),
        CheckpointError,
        "'split_special_tokens' is 'no'",
        kind,
    )
    add(
        "tokenizer_config another mask token",
        hf(lambda d: edit_json(d / "tokenizer_config.json", mask_token="<mask>"), call=tokenizer),
        CheckpointError,
        "mask_token is '<mask>'",
        kind,
    )
    add(
        "tokenizer.json normalizer lowercase 'yes'",
        hf(lambda d: edit_json_at(d / "tokenizer.json", ["normalizer", "lowercase"], "yes"), call=tokenizer),
        CheckpointError,
        "'lowercase' is 'yes'",
        kind,
    )
    add(
        "tokenizer.json added token beyond the specials",
        hf(
            lambda d: edit_json(
                d / "tokenizer.json",
                added_tokens=[
                    {"id": 90, "content": "<new>", "special": False, "normalized": True},
                ],
            ),
            call=tokenizer,
        ),
        CheckpointError,
        "an added token beyond the five special ones",
        kind,
    )
    add(
        "tokenizer.json special token at another id",
        hf(
            lambda d: edit_json(d / "tokenizer.json", added_tokens=[{"id": 7, "content": "[MASK]", "special": True}]),
            call=tokenizer,
        ),
        CheckpointError,
        "has id 7, but the vocabulary gives",
        kind,
    )
    add(
        "tokenizer.json special token with lstrip",
        hf(
            lambda d: edit_json_at(d / "tokenizer.json", ["added_tokens", 0, "lstrip"], True),
            call=tokenizer,
        ),
        CheckpointError,
        "matches special tokens whole and unnormalized only",
        kind,
    )
    for label, edit, phrase in (
        ("model a list", lambda d: edit_json(d / "tokenizer.json", model=[1]), "'model' is list"),
        ("vocab a list", lambda d: edit_json_at(d / "tokenizer.json", ["model", "vocab"], ["a"]), "not a WordPiece"),
        (
            "vocab with string ids",
            lambda d: edit_json_at(d / "tokenizer.json", ["model", "vocab"], {"[PAD]": "0"}),
            "integer ids",
        ),
        (
            "vocab with gapped ids",
            lambda d: edit_json_at(d / "tokenizer.json", ["model", "vocab"], {"[PAD]": 0, "[UNK]": 5}),
            "without gaps",
        ),
        ("normalizer a string", lambda d: edit_json(d / "tokenizer.json", normalizer="bert"), "'normalizer' is str"),
        (
            "pre_tokenizer a list",
            lambda d: edit_json(d / "tokenizer.json", pre_tokenizer=[]),
            "'pre_tokenizer' is list",
        ),
        ("added_tokens an object", lambda d: edit_json(d / "tokenizer.json", added_tokens={}), "'added_tokens' is"),
        (
            "unk_token another",
            lambda d: edit_json_at(d / "tokenizer.json", ["model", "unk_token"], "<unk>"),
            "unk_token is '<unk>'",
        ),
        (
            "max_input_chars_per_word 5",
            lambda d: edit_json_at(d / "tokenizer.json", ["model", "max_input_chars_per_word"], 5),
            "max_input_chars_per_word is 5",
        ),
        (
            "clean_text false",
            lambda d: edit_json_at(d / "tokenizer.json", ["normalizer", "clean_text"], False),
            "clean_text is False",
        ),
    ):
        add(f"tokenizer.json {label}", hf(edit, call=tokenizer), CheckpointError, phrase, kind)
    add(
        "vocab.txt not UTF-8",
        vocab_only(b"[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n\xff\xfe\n"),
        CheckpointError,
        "not UTF-8",
        kind,
    )
    add(
        "vocab.txt with a duplicate after CRLF stripping",
        vocab_only(b"[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\r\nhello\n"),
        ValueError,
        "duplicate token 'hello'",
        kind,
    )
    add(
        "vocab.txt without [MASK]",
        vocab_only(b"[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n"),
        ValueError,
        "lacks required special token",
        kind,
    )
    add(
        "vocab.txt empty",
        vocab_only(b""),
        ValueError,
        "the vocabulary is empty",
        kind,
    )
    add(
        "own preset tokenizer lowercase 'false'",
        own(
            lambda d: edit_json_at(d / "tokenizer.json", ["config", "lowercase"], "false"),
            call=tokenizer,
        ),
        CheckpointError,
        "'lowercase' is 'false'",
        kind,
    )
    add(
        "own preset tokenizer sequence_length 10**9",
        own(lambda d: edit_json_at(d / "tokenizer.json", ["config", "sequence_length"], 10**9), call=tokenizer),
        CheckpointError,
        "'sequence_length' is 1000000000",
        kind,
    )
    add(
        "own preset preprocessor sequence_length '20'",
        own(lambda d: edit_json_at(d / "preprocessor.json", ["config", "sequence_length"], "20")),
        CheckpointError,
        "'sequence_length' is '20' (str)",
        kind,
    )
    add(
        "own preset without its vocabulary asset",
        own(lambda d: (d / asset).unlink(), call=tokenizer),
        CheckpointError,
        "missing vocabulary asset",
        kind,
    )

    # 7. Wrong JSON types and shapes: a named error, never a raw TypeError/KeyError.
    kind = "types"
    for label, edit, phrase in (
        ("config.json a list", lambda d: (d / "config.json").write_text("[1, 2]"), "expected a JSON object, got list"),
        ("config.json a string", lambda d: (d / "config.json").write_text('"x"'), "expected a JSON object, got str"),
        ("config.json empty", lambda d: (d / "config.json").write_text(""), "not valid JSON"),
        ("config.json not UTF-8", lambda d: (d / "config.json").write_bytes(b'{"\xff": 1}'), "not UTF-8"),
        ("config.json NaN literal", lambda d: edit_json(d / "config.json", dropout=float("nan")), "'dropout' is nan"),
        (
            "config.json lacks dim",
            lambda d: drop_json_key(d / "config.json", "dim"),
            "lacks required key(s) ['dim']",
        ),
        (
            "architectures a string",
            lambda d: edit_json(d / "config.json", architectures="DistilBertModel"),
            "'architectures' is",
        ),
        ("architectures [5]", lambda d: edit_json(d / "config.json", architectures=[5]), "'architectures' is [5]"),
        (
            "config.json a directory",
            lambda d: ((d / "config.json").unlink(), (d / "config.json").mkdir()),
            "not a regular",
        ),
    ):
        add(f"HF {label}", hf(edit), CheckpointError, phrase, kind)
    for label, edit, phrase in (
        ("id2label a list", lambda d: edit_json(d / "config.json", id2label=["a", "b", "c"]), "'id2label' is list"),
        (
            "num_labels a string",
            lambda d: (edit_json(d / "config.json", num_labels="3"), drop_json_key(d / "config.json", "id2label")),
            "'num_labels' is '3' (str)",
        ),
        (
            "num_labels true",
            lambda d: (edit_json(d / "config.json", num_labels=True), drop_json_key(d / "config.json", "id2label")),
            "'num_labels' is True (bool)",
        ),
        ("seq_classif_dropout a string", lambda d: edit_json(d / "config.json", seq_classif_dropout="x"), "'dropout'"),
    ):
        add(
            f"HF classifier {label}",
            hf(edit, call=classifier, name="head_text_classifier"),
            (CheckpointError, ValueError),
            phrase,
            kind,
        )
    for label, edit, phrase in (
        ("weight_map a list", lambda d: edit_json(d / index_name, weight_map=["a"]), "'weight_map' is list"),
        ("weight_map empty", lambda d: edit_json(d / index_name, weight_map={}), "'weight_map' is dict"),
        ("weight_map missing", lambda d: drop_json_key(d / index_name, "weight_map"), "'weight_map' is NoneType"),
        (
            "weight_map value an int",
            lambda d: edit_json_at(d / index_name, ["weight_map", "embeddings.LayerNorm.bias"], 5),
            "is 5, expected a shard file name",
        ),
        ("index a list", lambda d: (d / index_name).write_text("[]"), "expected a JSON object"),
        (
            "index lists a weight no shard holds",
            lambda d: edit_json_at(d / index_name, ["weight_map", "extra.weight"], "model-00001-of-00005.safetensors"),
            "lists weight(s) no shard holds",
        ),
        (
            "index puts a weight in another shard",
            lambda d: edit_json_at(
                d / index_name, ["weight_map", "embeddings.LayerNorm.bias"], "model-00005-of-00005.safetensors"
            ),
            "which the index puts in",
        ),
    ):
        add(f"index {label}", hf(edit, name="backbone_sharded"), CheckpointError, phrase, kind)
    for label, edit, phrase in (
        ("config.json config a list", lambda d: edit_json(d / "config.json", config=[1]), "'config' an object"),
        ("config.json class_name 5", lambda d: edit_json(d / "config.json", class_name=5), "'class_name' must be"),
        (
            "config.json of another class",
            lambda d: edit_json(d / "config.json", class_name="Dense"),
            "not a DistilBertBackbone",
        ),
        (
            "config.json lacking num_heads",
            lambda d: drop_json_key(d / "config.json", "config", "num_heads"),
            "lacks ['num_heads']",
        ),
        ("task.json config a list", lambda d: edit_json(d / "task.json", config=[1]), "'config' is not an object"),
        (
            "task.json num_classes a string",
            lambda d: edit_json_at(d / "task.json", ["config", "num_classes"], "3"),
            "'num_classes' is '3' (str)",
        ),
        (
            "task.json dropout a string",
            lambda d: edit_json_at(d / "task.json", ["config", "dropout"], "x"),
            "'dropout' is 'x'",
        ),
        ("preprocessor.json config a list", lambda d: edit_json(d / "preprocessor.json", config=[1]), "'config' is"),
        ("tokenizer.json config a list", lambda d: edit_json(d / "tokenizer.json", config=[1]), "'config' is list"),
        ("task.weights.h5 not HDF5", lambda d: (d / "task.weights.h5").write_bytes(b"junk"), "not a readable HDF5"),
        ("model.weights.h5 empty", lambda d: (d / "model.weights.h5").write_bytes(b""), "not a readable HDF5"),
        ("task.weights.h5 missing", lambda d: (d / "task.weights.h5").unlink(), "missing weights file"),
    ):
        add(f"own preset {label}", own(edit), (CheckpointError, ValueError), phrase, kind)
    add(
        "bare checkpoint without num_classes",
        lambda ws: classifier(CHECKPOINTS / "backbone"),
        CheckpointError,
        "needs num_classes",
        kind,
    )
    add(
        "KerasHub preset missing a weight group",
        keras_hub(lambda d: h5_replace(d / "model.weights.h5", HUB_KEY, lambda f, n, o: None), call=backbone),
        CheckpointError,
        "not a KerasHub DistilBERT preset of this layout",
        kind,
    )
    add(
        "KerasHub preset weights a group where a dataset belongs",
        keras_hub(lambda d: h5_replace(d / "model.weights.h5", HUB_KEY, lambda f, n, o: f.create_group(n))),
        CheckpointError,
        "is a group, expected a weight",
        kind,
    )
    add(
        "KerasHub preset weights of strings",
        keras_hub(
            lambda d: h5_replace(d / "model.weights.h5", HUB_KEY, lambda f, n, o: f.create_dataset(n, data=["x"] * 4))
        ),
        CheckpointError,
        "not a numeric weight",
        kind,
    )
    return cases


def classifier_with_two(directory):
    return classifier(directory, num_classes=2)


CASES = _cases()
