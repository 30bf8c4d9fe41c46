"""`tools/make_goldens.py --check` catches stale, added and removed cases."""

import shutil

import h5py

from harness import golden as golden_io
from tools import make_goldens
from tools.golden_cases import load_all

CASES = ["backbone_gelu_batch1", "tokenizer_cased"]


def small_goldens(tmp_path, case_ids):
    manifest = golden_io.read_manifest()
    for case_id in case_ids:
        shutil.copy(golden_io.DEFAULT_GOLDENS_DIR / manifest[case_id]["file"], tmp_path)
    golden_io.write_manifest(tmp_path, {case_id: manifest[case_id] for case_id in case_ids})
    return tmp_path


def test_current_goldens_pass_and_a_stale_one_is_named(tmp_path, capsys):
    registry = load_all()
    directory = small_goldens(tmp_path, CASES)
    assert make_goldens.check({c: registry[c] for c in CASES}, directory) == 0

    # A stale golden: its values drifted but its manifest digest was updated to match.
    path = directory / f"{CASES[0]}.h5"
    with h5py.File(path, "r+") as f:
        f["outputs/hidden_states/01"][0, 2, 3] += 1e-3
    golden_io.write_manifest(
        directory,
        golden_io.read_manifest(directory)
        | {CASES[0]: golden_io.manifest_entry(golden_io.read_golden_file(path), path.name)},
    )
    capsys.readouterr()
    assert make_goldens.check({c: registry[c] for c in CASES}, directory) == 1
    report = capsys.readouterr().out
    assert f"{CASES[0]}: outputs/hidden_states/01: max abs change 1.000e-03 at (0, 2, 3)" in report


def test_added_and_removed_cases_fail(tmp_path, capsys):
    registry = load_all()
    directory = small_goldens(tmp_path, CASES)
    selected = {c: registry[c] for c in CASES[1:]} | {"backbone_relu_batch1": registry["backbone_relu_batch1"]}
    assert make_goldens.check(selected, directory) == 1
    report = capsys.readouterr().out
    assert f"{CASES[0]}: in {directory}/MANIFEST.json but no longer in the registry" in report
    assert "backbone_relu_batch1: registered but has no committed golden" in report
