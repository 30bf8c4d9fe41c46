"""Presets out: `save_to_preset` writes KerasHub's layout (the file names below; read back by
`loaders.KerasPresetLoader`), `export_to_transformers` a Hugging Face checkpoint. Writing goes to a
temporary directory renamed into place at the end, so a failure never leaves a half-written preset.
"""

import contextlib
import ctypes
import errno
import glob
import os
import shutil
import sys
import tempfile
from pathlib import Path

import keras

from distilbert_hub.convert.hf_checkpoint import CheckpointError, write_json, write_safetensors
from distilbert_hub.convert.hf_config import hf_config_from_backbone, hf_config_from_task
from distilbert_hub.convert.hf_tokenizer import write_hf_tokenizer
from distilbert_hub.convert.hf_weights import backbone_weight_map, export_hf_weights, task_weight_map
from distilbert_hub.distilbert_backbone import DistilBertBackbone
from distilbert_hub.distilbert_tokenizer import survives_vocabulary_file
from distilbert_hub.version import __version__

CONFIG = "config.json"
KERAS_WEIGHTS = "model.weights.h5"
TASK_CONFIG = "task.json"
TASK_WEIGHTS = "task.weights.h5"
TOKENIZER_CONFIG = "tokenizer.json"
PREPROCESSOR_CONFIG = "preprocessor.json"
METADATA = "metadata.json"
VOCABULARY_ASSET = Path("assets") / "tokenizer" / "vocabulary.txt"
STAGING_MARK = ".partial-"


def _check_output_path(path):
    text = os.fspath(path)
    if "\x00" in text:
        raise CheckpointError(f"{text!r}: an output path with a NUL byte.")
    if any(len(part.encode("utf-8", "surrogateescape")) > 255 - 40 for part in Path(text).parts):
        raise CheckpointError(f"{text}: a path component too long for the file system (with the staging suffix).")
    for parent in Path(text).absolute().parents:
        if parent.exists() and not parent.is_dir():
            raise CheckpointError(f"{text}: cannot write there: {parent} is a file, not a directory.")


def _remove_stale_staging(path):
    """Remove `.NAME.partial-PID-*` siblings left by a writer that no longer runs (killed mid-write)."""
    prefix = f".{path.name}{STAGING_MARK}"
    for candidate in path.parent.glob(f"{glob.escape(prefix)}*"):
        pid = candidate.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            shutil.rmtree(candidate, ignore_errors=True)


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        pass
    return True


def _rename_no_replace(source, target):
    """Rename `source` to `target`, refusing a target that appeared meanwhile (atomically with Linux' renameat2)."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        renameat2 = None
    if renameat2 is not None:
        at_fdcwd, rename_noreplace = -100, 1
        if renameat2(at_fdcwd, os.fsencode(source), at_fdcwd, os.fsencode(target), rename_noreplace) == 0:
            return
        code = ctypes.get_errno()
        if code == errno.EEXIST:
            raise FileExistsError(f"{target} appeared while it was being written; nothing was written to it.")
        if code not in (errno.EINVAL, errno.ENOSYS):  # e.g. a file system without RENAME_NOREPLACE
            raise OSError(code, os.strerror(code), os.fspath(target))
    if os.path.lexists(target):
        raise FileExistsError(f"{target} appeared while it was being written; nothing was written to it.")
    os.rename(source, target)


@contextlib.contextmanager
def no_tensorflow_probe():
    """Keras' serialize_keras_object (behind every get_config, through the dtype policy) imports tensorflow
    whenever it is installed, to test for a tf.TensorShape; tensorflow beside jax, or beside transformers'
    torch, in one process aborts it. Off the tensorflow backend, and while tensorflow is not imported, no
    object can be a tf.TensorShape: Keras' lazy module is told tensorflow is unavailable during a save.
    Private Keras API (guarded in tests/test_keras_private_api.py): no public switch stops that probe."""
    from keras.src.utils import module_utils

    lazy = getattr(module_utils, "tensorflow", None)
    if keras.backend.backend() == "tensorflow" or "tensorflow" in sys.modules or not hasattr(lazy, "_available"):
        yield
        return
    saved, lazy._available = lazy._available, False
    try:
        yield
    finally:
        lazy._available = saved


@contextlib.contextmanager
def new_directory(path):
    """A temporary sibling of `path` (`.NAME.partial-PID-*`, umask permissions) that becomes `path` on success;
    an existing target, or one appearing meanwhile, is refused; the next write removes a killed writer's staging."""
    _check_output_path(path)
    path = Path(path)
    if os.path.lexists(path):
        raise FileExistsError(f"{path} already exists; choose a new directory (nothing was written).")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_staging(path)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}{STAGING_MARK}{os.getpid()}-", dir=path.parent))
    except OSError as error:
        raise CheckpointError(f"{path}: cannot create the output directory ({error.strerror or error}).") from None
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes 0700
    try:
        yield staging
        _rename_no_replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _spec(obj, config):
    return {"module": type(obj).__module__, "class_name": type(obj).__name__, "config": config}


class PresetSaver:
    """Writes a tokenizer, preprocessor, backbone or task, with `metadata.json`, as a new preset (KerasHub's)."""

    def __init__(self, preset_dir):
        self.preset_dir = preset_dir

    @contextlib.contextmanager
    def _writing(self, metadata=None):
        with no_tensorflow_probe(), new_directory(self.preset_dir) as directory:
            yield directory
            versions = {"distilbert_hub_version": __version__, "keras_version": keras.__version__}
            write_json(directory / METADATA, versions | (metadata or {}))

    def save_tokenizer(self, tokenizer):
        with self._writing() as directory:
            self._write_tokenizer(tokenizer, directory)

    def save_preprocessor(self, preprocessor):
        with self._writing() as directory:
            self._write_preprocessor(preprocessor, directory)

    def save_backbone(self, backbone):
        metadata = {"parameter_count": int(backbone.count_params())}
        with self._writing(metadata) as directory:
            self._write_backbone(backbone, directory)

    def save_task(self, task):
        metadata = {
            "parameter_count": int(task.backbone.count_params()),
            "task_parameter_count": int(task.count_params()),
        }
        with self._writing(metadata) as directory:
            config = task.get_config()
            # The task's serialized backbone carries the head's quantized layers in its dtype policy map
            # too: the head is built from it.
            self._write_backbone(task.backbone, directory, config["backbone"])
            config |= {"backbone": None, "preprocessor": None}
            write_json(directory / TASK_CONFIG, _spec(task, config))
            task.save_weights(directory / TASK_WEIGHTS)
            if task.preprocessor is not None:
                self._write_preprocessor(task.preprocessor, directory)

    @staticmethod
    def _write_tokenizer(tokenizer, directory):
        tokens, config = tokenizer.get_vocabulary(), tokenizer.get_config()
        # A token with a line break or trailing space cannot be a line of vocabulary.txt: the list stays in the config.
        if all(survives_vocabulary_file(token) for token in tokens):
            (directory / VOCABULARY_ASSET).parent.mkdir(parents=True, exist_ok=True)
            (directory / VOCABULARY_ASSET).write_text("".join(f"{t}\n" for t in tokens), encoding="utf-8")
            config |= {"vocabulary": None}
        write_json(directory / TOKENIZER_CONFIG, _spec(tokenizer, config))

    def _write_preprocessor(self, preprocessor, directory):
        self._write_tokenizer(preprocessor.tokenizer, directory)
        config = preprocessor.get_config() | {"tokenizer": None}
        write_json(directory / PREPROCESSOR_CONFIG, _spec(preprocessor, config))

    @staticmethod
    def _write_backbone(backbone, directory, serialized=None):
        write_json(directory / CONFIG, serialized or keras.saving.serialize_keras_object(backbone))
        backbone.save_weights(directory / KERAS_WEIGHTS)


def export_to_transformers(model, path):
    """A backbone or task as a directory `transformers` loads (with the tokenizer where there is a preprocessor)."""
    if isinstance(model, DistilBertBackbone):
        backbone, entries, config, tokenizer = model, backbone_weight_map(model), hf_config_from_backbone(model), None
    else:
        backbone, entries, config = model.backbone, task_weight_map(model), hf_config_from_task(model)
        tokenizer = model.preprocessor.tokenizer if model.preprocessor is not None else None
    config |= {"dtype": "float32"}
    if tokenizer is not None and tokenizer.vocabulary_size() != backbone.vocabulary_size:
        raise ValueError(
            f"the tokenizer has {tokenizer.vocabulary_size()} tokens but the backbone {backbone.vocabulary_size}."
        )
    weights = export_hf_weights(entries)
    with new_directory(path) as directory:
        write_json(directory / CONFIG, config)
        write_safetensors(directory / "model.safetensors", weights)
        if tokenizer is not None:
            write_hf_tokenizer(tokenizer, directory, backbone.max_sequence_length)
