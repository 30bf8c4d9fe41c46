"""HDF5 weight files read as Keras' own loader reads them, sized before a byte of data is read.

An HDF5 file can hold more than arrays: external storage, virtual datasets over other files,
an `ExternalLink` to another file, a `SoftLink` making one path another's weights. Keras' loader
(and KerasHub's) refuse those; so does every reader here. A declared shape costs nothing to store (a
170 KB file can declare a 2 GiB chunked dataset): declared sizes are checked against the config first.
"""

import h5py
import numpy as np

from distilbert_hub.convert.hf_checkpoint import CheckpointError


def open_h5(path):
    try:
        return h5py.File(path, "r")
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path}: not a readable HDF5 weights file ({str(error).splitlines()[0]}).") from None


def check_dataset(path, name, dataset, max_elements=None, expected_size=None):
    """Refuse a dataset stored outside the file or declaring more elements than allowed."""
    if dataset.external:
        raise CheckpointError(
            f"{path}: dataset '{name}' keeps its data in another file (HDF5 external storage); refused, as Keras does."
        )
    if dataset.is_virtual:
        raise CheckpointError(f"{path}: dataset '{name}' is a virtual dataset over other files; refused.")
    if dataset.dtype.kind not in "fiub":
        raise CheckpointError(f"{path}: dataset '{name}' has dtype {dataset.dtype}, not a numeric weight.")
    size = int(np.prod(dataset.shape, dtype=np.int64)) if dataset.shape is not None else 0
    declares = f"{path}: dataset '{name}' declares shape {dataset.shape} ({size} values)"
    if expected_size is not None and size != expected_size:
        raise CheckpointError(f"{declares}, expected {expected_size} values for this config (refused before reading).")
    if max_elements is not None and size > max_elements:
        raise CheckpointError(
            f"{declares}, more than any weight of this config ({max_elements}); refused before reading."
        )
    return size


def check_link(path, group, name, where):
    link = group.get(name, getlink=True)
    if isinstance(link, h5py.ExternalLink):
        raise CheckpointError(f"{path}: '{where}' is an HDF5 external link to another file; refused, as Keras does.")
    if isinstance(link, h5py.SoftLink):
        raise CheckpointError(
            f"{path}: '{where}' is an HDF5 soft link (to {link.path!r:.80}); refused: each weight must be its own data."
        )


def check_h5_weights(path, max_elements, max_total):
    """Walk the whole file (no data read): no links or external storage, no dataset over `max_elements`
    values, at most `max_total` values in all."""
    total = 0
    with open_h5(path) as file:
        stack = [("", file)]
        while stack:
            prefix, group = stack.pop()
            for name in group:
                where = f"{prefix}{name}"
                check_link(path, group, name, where)
                item = group[name]
                if isinstance(item, h5py.Group):
                    stack.append((f"{where}/", item))
                elif isinstance(item, h5py.Dataset):
                    total += check_dataset(path, where, item, max_elements)
                    if total > max_total:
                        raise CheckpointError(
                            f"{path}: declares more than {max_total} values in all, more than this config's model "
                            "has; refused before reading."
                        )


def backbone_datasets_differ(model_path, task_path):
    """The first dataset of `model_path` (a backbone's weights) differing from its copy in `task_path`, or None."""
    with open_h5(model_path) as backbone, open_h5(task_path) as task:
        names = []
        backbone.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
        prefixes = [f"layers/{group}/" for group in task.get("layers", {})]
        prefix = next((p for p in prefixes if all(f"{p}{name}" in task for name in names)), None)
        if prefix is None:
            return f"{task_path} holds no copy of the backbone in {model_path}"
        for name in sorted(names):
            if not np.array_equal(np.asarray(backbone[name]), np.asarray(task[f"{prefix}{name}"]), equal_nan=True):
                return f"'{name}' of {model_path} differs from '{prefix}{name}' of {task_path}"
    return None
