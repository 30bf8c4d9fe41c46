"""Hostile and broken files (harness/hostile.py's table): each is refused with
its error class and a phrase naming the problem, in bounded time, without
reading, echoing or touching anything outside the checkpoint; the loads that
would allocate stay within a memory bound (a child process measures its peak
RSS). Writes: permissions, crash leftovers, a target that appears meanwhile,
paths no file system takes."""

import json
import os
import stat
import struct
import sys
import time

import numpy as np
import pytest

import distilbert_hub as hub
from distilbert_hub.convert import preset as preset_module
from distilbert_hub.convert.hf_checkpoint import CheckpointError, read_safetensors
from harness import hostile
from harness.testing import run_in_fresh_process

# The slowest refusal measured is under 2 s (a tiny model built, then its weights checked); a case past
# this has started to do the work its validation should have stopped.
MAX_SECONDS_PER_CASE = 20


@pytest.fixture(scope="module")
def own_presets(tmp_path_factory):
    """This library's presets of the tiny fixture models (written on the current backend)."""
    root = tmp_path_factory.mktemp("own")
    classifier = hub.DistilBertTextClassifier.from_preset(str(hostile.CHECKPOINTS / "head_text_classifier"))
    classifier.save_to_preset(root / "classifier")
    return {"classifier": root / "classifier"}


@pytest.fixture
def workspace(tmp_path, own_presets):
    return hostile.Workspace(tmp_path, own_presets)


def test_the_table_is_at_least_as_large_as_the_red_team_pass():
    ids = [case.id for case in hostile.CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert len(ids) >= 150, len(ids)


@pytest.mark.parametrize("case", hostile.CASES, ids=lambda case: case.id)
def test_a_hostile_file_is_refused_by_name(case, workspace):
    call = case.make(workspace)
    before = workspace.snapshot()
    start = time.monotonic()
    with pytest.raises(case.error) as raised:
        call()
    elapsed = time.monotonic() - start
    message = str(raised.value)
    assert case.phrase in message, f"{case.id}: {type(raised.value).__name__}: {message}"
    assert hostile.SECRET not in message, f"{case.id}: the error echoes an outside file: {message}"
    assert workspace.snapshot() == before, f"{case.id}: a file outside the checkpoint changed"
    assert elapsed < MAX_SECONDS_PER_CASE, f"{case.id}: took {elapsed:.1f} s"
    # No raw Python internals for a file fault: the library's own error (a ValueError) names it.
    assert isinstance(raised.value, ValueError), f"{case.id}: {type(raised.value).__name__}"


@pytest.mark.parametrize("name", sorted(hostile.MALFORMED_SAFETENSORS))
def test_every_header_the_safetensors_library_refuses_we_refuse_naming_the_file(name, tmp_path):
    from safetensors import safe_open

    path = tmp_path / "model.safetensors"
    path.write_bytes(hostile.MALFORMED_SAFETENSORS[name])
    try:
        with safe_open(str(path), framework="numpy") as f:
            for key in f.keys():  # noqa: SIM118 (a safe_open handle)
                f.get_tensor(key)
        library_refuses = False
    except Exception:
        library_refuses = True
    try:
        for tensor in read_safetensors(path).values():
            np.asarray(tensor)
        ours = None
    except CheckpointError as error:
        ours = str(error)
    if library_refuses:
        assert ours is not None and str(path) in ours, f"{name}: the library refuses, we gave {ours!r}"
    else:  # the library reads it: so do we, or we refuse for a reason of our own (named)
        assert ours is None or str(path) in ours


CHILD_SCRIPT = """
import json, resource, shutil, sys, tempfile, traceback
from pathlib import Path

tensorflow_imports = []


class Probe:  # records every import of tensorflow (torch only probes it with find_spec: not an import)
    def find_spec(self, name, path=None, target=None):
        stack = "".join(traceback.format_stack())
        if name == "tensorflow" and "importlib.util" not in stack and "importlib/util" not in stack:
            tensorflow_imports.append(stack[-3000:])
        return None


sys.meta_path.insert(0, Probe())
import keras
import distilbert_hub as hub
from harness import hostile

root = Path(tempfile.mkdtemp())
own = root / "own"
model = hub.DistilBertTextClassifier.from_preset(str(hostile.CHECKPOINTS / "head_text_classifier"))
model.save_to_preset(own)
model.export_to_transformers(root / "hf")
hub.DistilBertTextClassifier.from_preset(str(own))
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
refused = 0
for case in hostile.CASES:
    if case.kind != "allocation":
        continue
    folder = root / str(refused)
    folder.mkdir()
    call = case.make(hostile.Workspace(folder, {"classifier": own}))
    try:
        call()
    except ValueError:
        refused += 1
    shutil.rmtree(folder)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({
    "refused": refused,
    "grew_kib": peak - baseline,
    "backend": keras.backend.backend(),
    "tensorflow_imports": tensorflow_imports,
}))
"""


@pytest.fixture(scope="module")
def child():
    """One fresh process: save, export and reload with an import probe, then every allocation case."""
    return json.loads(run_in_fresh_process(CHILD_SCRIPT).strip().splitlines()[-1])


def test_loads_that_would_allocate_gigabytes_stay_within_a_memory_bound(child):
    """Every allocation case in one child process: its peak RSS (ru_maxrss)
    may grow by at most 300 MiB over a warm baseline; before validation came
    first, one of them alone took 2.8 GB (vocab_size 2e7) to 128 GB."""
    assert child["refused"] == sum(case.kind == "allocation" for case in hostile.CASES)
    assert child["grew_kib"] < 300 * 1024, f"peak RSS grew by {child['grew_kib'] / 1024:.0f} MiB"


def test_saving_and_loading_never_import_tensorflow_off_its_backend(child):
    if child["backend"] == "tensorflow":
        pytest.skip("tensorflow is the backend here")
    assert child["tensorflow_imports"] == [], child["tensorflow_imports"][0]


# --- paths and writes --------------------------------------------------------------


@pytest.fixture(scope="module")
def small_backbone():
    return hub.DistilBertBackbone.from_preset(str(hostile.CHECKPOINTS / "backbone"))


def writers(model):
    return {"save_to_preset": model.save_to_preset, "export_to_transformers": model.export_to_transformers}


@pytest.mark.parametrize("writer", ["save_to_preset", "export_to_transformers"])
@pytest.mark.parametrize(
    "make_path, phrase",
    [
        (lambda tmp: tmp / "a_file" / "preset", "is a file, not a directory"),
        (lambda tmp: tmp / ("x" * 300), "too long"),
        (lambda tmp: str(tmp / "nul\x00name"), "NUL byte"),
    ],
    ids=["parent is a file", "name too long", "NUL byte"],
)
def test_an_output_path_no_file_system_takes_is_refused_by_name(tmp_path, small_backbone, writer, make_path, phrase):
    (tmp_path / "a_file").write_text("")
    with pytest.raises(CheckpointError, match=phrase):
        writers(small_backbone)[writer](make_path(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


@pytest.mark.parametrize(
    "source",
    ["nul\x00byte", "x" * 5000, "/" + "y" * 300 + "/z"],
    ids=["NUL byte", "name too long", "component too long"],
)
def test_a_source_path_no_file_system_takes_is_refused_by_name(source):
    with pytest.raises(ValueError, match="neither a preset name"):
        hub.DistilBertBackbone.from_preset(source)


def test_a_written_preset_has_the_umask_permissions(tmp_path, small_backbone):
    umask = os.umask(0o022)
    try:
        small_backbone.save_to_preset(tmp_path / "preset")
        small_backbone.export_to_transformers(tmp_path / "hf")
    finally:
        os.umask(umask)
    for folder in (tmp_path / "preset", tmp_path / "hf"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755, oct(folder.stat().st_mode)


def test_staging_left_by_a_killed_writer_is_removed_by_the_next_write(tmp_path, small_backbone):
    dead_pid = 2**22 + 12345  # above the kernel's pid_max on this platform: no such process
    stale = tmp_path / f".preset.partial-{dead_pid}-abc123"
    stale.mkdir()
    (stale / "config.json").write_text("{}")
    live = tmp_path / f".preset.partial-{os.getppid()}-def456"  # a writer still running: kept
    live.mkdir()
    small_backbone.save_to_preset(tmp_path / "preset")
    assert not stale.exists() and live.exists()
    assert (tmp_path / "preset" / "model.weights.h5").is_file()


def test_a_killed_writer_leaves_no_target(tmp_path):
    script = f"""
import os, distilbert_hub as hub
from distilbert_hub.convert import preset
backbone = hub.DistilBertBackbone.from_preset({str(hostile.CHECKPOINTS / "backbone")!r})
original = preset.write_json
def die(path, value):
    if path.name == "metadata.json":
        os._exit(9)  # as kill -9: no cleanup runs
    original(path, value)
preset.write_json = die
backbone.save_to_preset({str(tmp_path / "preset")!r})
"""
    with pytest.raises(AssertionError):
        run_in_fresh_process(script)
    assert not (tmp_path / "preset").exists()
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert all(name.startswith(".preset.partial-") for name in leftovers) and leftovers
    hub.DistilBertBackbone.from_preset(str(hostile.CHECKPOINTS / "backbone")).save_to_preset(tmp_path / "preset")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preset"]


@pytest.mark.parametrize("appears", ["an empty directory", "a file", "a full directory"])
def test_a_target_that_appears_during_the_write_is_refused(tmp_path, small_backbone, monkeypatch, appears):
    target = tmp_path / "preset"
    original = preset_module.write_json

    def and_meanwhile(path, value):
        original(path, value)
        if path.name == "metadata.json":
            if appears == "a file":
                target.write_text("someone else's")
            else:
                target.mkdir()
                if appears == "a full directory":
                    (target / "theirs.txt").write_text("someone else's")

    monkeypatch.setattr(preset_module, "write_json", and_meanwhile)
    with pytest.raises(FileExistsError, match="appeared while it was being written"):
        small_backbone.save_to_preset(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preset"]
    if appears != "a file":
        assert sorted(p.name for p in target.iterdir()) == ([] if appears == "an empty directory" else ["theirs.txt"])


# --- no silent results -------------------------------------------------------------


def test_a_symlink_inside_the_checkpoint_is_followed(tmp_path):
    import shutil

    directory = tmp_path / "checkpoint"
    shutil.copytree(hostile.CHECKPOINTS / "backbone", directory)
    (directory / "store").mkdir()
    (directory / "model.safetensors").rename(directory / "store" / "weights.bin")
    os.symlink("store/weights.bin", directory / "model.safetensors")
    hub.DistilBertBackbone.from_preset(str(directory))


def test_a_hugging_face_cache_snapshot_reads_its_blobs(tmp_path):
    import shutil

    repo = tmp_path / "models--org--name"
    snapshot = repo / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    for file in (hostile.CHECKPOINTS / "backbone").iterdir():
        shutil.copy(file, repo / "blobs" / file.name)
        os.symlink(f"../../blobs/{file.name}", snapshot / file.name)
    hub.DistilBertBackbone.from_preset(str(snapshot))


def test_a_vocab_txt_only_checkpoint_lowercases_as_transformers_does(tmp_path):
    directory = tmp_path / "checkpoint"
    directory.mkdir()
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "cafe", "Hello", "a\rb"]
    (directory / "vocab.txt").write_bytes("".join(f"{t}\n" for t in tokens).encode())
    tokenizer = hub.DistilBertTokenizer.from_preset(str(directory))
    assert tokenizer.lowercase is True and tokenizer.strip_accents is None
    assert tokenizer("Hello Café").tolist() == [5, 6]
    assert tokenizer.get_vocabulary() == tokens  # the lone CR stays inside its token: no id shifts
    assert hub.DistilBertTokenizer.from_preset(str(directory), lowercase=False)("Hello").tolist() == [7]


def test_tokens_with_line_breaks_survive_save_to_preset(tmp_path):
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a\nb", "c\rd", "e\r", "f ", "g"]
    tokenizer = hub.DistilBertTokenizer(tokens)
    tokenizer.save_to_preset(tmp_path / "preset")
    assert hub.DistilBertTokenizer.from_preset(str(tmp_path / "preset")).get_vocabulary() == tokens


def test_own_preset_weights_are_checked_for_finite_values_like_a_checkpoint(tmp_path, own_presets):
    import shutil

    import h5py

    shutil.copytree(own_presets["classifier"], tmp_path / "p")
    with h5py.File(tmp_path / "p" / "task.weights.h5", "r+") as f:
        name = "layers/dense_1/vars/1"
        value = np.asarray(f[name])
        value[0] = np.nan
        f[name][...] = value
    with pytest.raises(CheckpointError, match="holds NaN or infinity"):
        hub.DistilBertTextClassifier.from_preset(str(tmp_path / "p"))


def test_the_three_input_checks():
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]
    with pytest.raises(ValueError, match="id 5 is missing"):
        hub.DistilBertTokenizer({t: i if i < 5 else i + 1 for i, t in enumerate(tokens)})
    tokenizer = hub.DistilBertTokenizer(tokens)
    with pytest.raises(TypeError, match="row 0 of choices is one string"):
        hub.DistilBertMultipleChoicePreprocessor(tokenizer, 8)((["a"], ["ab"]))
    with pytest.raises(ValueError, match="3 labels for one text"):
        hub.DistilBertTextClassifierPreprocessor(tokenizer, 8)("a b", [0, 1, 2])


def test_an_unparseable_safetensors_header_size_is_named(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", 2**64 - 1) + b"{}")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        read_safetensors(tmp_path / "model.safetensors")
    assert sys.getrecursionlimit() > 0  # the reader left the interpreter as it was
