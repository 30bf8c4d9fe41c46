"""What the validation notebooks share: the backend, the repository on the
path (for `harness`), the local directory of a checkpoint, and how a list of
`harness.compare.Comparison`s is shown (a table and a per-output plot).

Nothing here compares: the numbers come from `harness.compare.compare`.
"""

import os
import sys
import warnings
from pathlib import Path

# transformers runs in the same process as the reference side, and it must
# never meet TensorFlow: the notebooks run Keras on torch.
os.environ.setdefault("KERAS_BACKEND", "torch")
# transformers' per-load progress bars would fill the rendered pages.
os.environ.setdefault("TQDM_DISABLE", "1")
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm.auto without ipywidgets

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def local_directory(checkpoint):
    """The directory that `checkpoint` (a path, `hf://org/name` or a preset
    name) resolves to, as `from_preset` resolves it: transformers then loads
    the very same files."""
    from distilbert_hub.convert.sources import resolve

    return str(resolve(checkpoint))


def table(comparisons):
    """One row per comparison: max abs error on real tokens, the worst index
    with both values, the tolerance and whether it holds."""
    import pandas as pd

    rows = []
    for c in comparisons:
        index, ours, theirs, _ = c.worst[0] if c.worst else ((), float("nan"), float("nan"), 0.0)
        rows.append(
            {
                "output": c.output,
                "compared": c.compared,
                "max abs error": c.max_abs_error,
                "mean abs error": c.mean_abs_error,
                "worst index": str(index) if c.worst else "-",
                "ours": ours,
                "transformers": theirs,
                "tolerance": f"{c.atol:g} + {c.rtol:g}*|x|" if c.rtol else f"{c.atol:g}",
                "within": "yes" if c.passed else f"NO: {c.problem or f'{c.mismatched} outside'}",
            }
        )
    frame = pd.DataFrame(rows).set_index("output")
    return frame.style.format(
        {"max abs error": "{:.2e}", "mean abs error": "{:.2e}", "ours": "{:.7g}", "transformers": "{:.7g}"}
    )


def plot_errors(comparisons, title, xlabel="output"):
    """Max abs error per comparison (log scale) against its tolerance; an
    exact 0 is drawn at 1e-9 and marked."""
    import matplotlib.pyplot as plt

    floor = 1e-9
    labels = [c.output for c in comparisons]
    errors = [max(c.max_abs_error, floor) for c in comparisons]
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(labels) + 2), 3.8))
    bars = ax.bar(range(len(labels)), errors, color=["tab:blue" if c.passed else "tab:red" for c in comparisons])
    for bar, c in zip(bars, comparisons):
        if c.max_abs_error == 0.0:
            ax.annotate("0", (bar.get_x() + bar.get_width() / 2, floor), ha="center", va="bottom", fontsize=8)
    tolerances = sorted({c.atol for c in comparisons if c.atol > 0})
    for tolerance in tolerances:
        ax.axhline(tolerance, color="red", linestyle="--", linewidth=1, label=f"tolerance {tolerance:g}")
    ax.set_yscale("log")
    ax.set_ylim(bottom=floor / 2)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("max abs error (real tokens)")
    ax.set_title(title)
    if tolerances:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
