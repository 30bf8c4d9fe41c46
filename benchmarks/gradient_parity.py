"""Worst gradient error against the transformers goldens, per parameter group,
on the current Keras backend (KERAS_BACKEND), as a fraction of each
gradient tensor's L2 norm (the shift-invariant biases, whose golden is
rounding noise, as a fraction of their layer's weight-gradient norm: the
scale their tolerance uses).

    KERAS_BACKEND=torch python benchmarks/gradient_parity.py
"""

import re

import keras

from harness.devices import use_full_float32
from harness.golden import GRADIENT_RELATIVE_TOLERANCE, case_ids, load_case
from harness.runner import compare_outputs, run_case

GROUPS = [
    ("LoRA matrices", r"\.lora_[AB]\."),
    ("embeddings", r"embeddings\.(word|position)_embeddings"),
    ("LayerNorms", r"layer_?norm", re.IGNORECASE),
    ("attention", r"attention\."),
    ("feed-forward", r"ffn\."),
    ("heads", r""),
]


def group_of(name):
    for label, pattern, *flags in GROUPS:
        if re.search(pattern, name, *flags):
            return label
    raise AssertionError(name)


def main():
    use_full_float32()
    worst, loss = {}, 0.0
    for case_id in case_ids(kind="gradients"):
        golden = load_case(case_id)
        for comparison in compare_outputs(golden, run_case(golden)):
            if comparison.output == "loss":
                loss = max(loss, comparison.max_abs_error)
                continue
            # atol is GRADIENT_RELATIVE_TOLERANCE x the norm the tolerance is relative to.
            relative = comparison.max_abs_error * GRADIENT_RELATIVE_TOLERANCE / comparison.atol
            group = group_of(comparison.output.removeprefix("gradients/"))
            if relative >= worst.get(group, (0.0,))[0]:
                worst[group] = (relative, case_id, comparison.output)
    print(f"backend {keras.backend.backend()}: worst loss abs error {loss:.2e}")
    for group, (relative, case_id, output) in sorted(worst.items()):
        print(f"  {group:14s} {relative:.2e}  ({case_id}: {output})")
    overall = max(v[0] for v in worst.values())
    print(f"  all groups     {overall:.2e} of the norm (tolerance {GRADIENT_RELATIVE_TOLERANCE:g})")


if __name__ == "__main__":
    main()
