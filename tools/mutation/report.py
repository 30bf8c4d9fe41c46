"""docs/mutation.md from a finished `mutmut run` (the last step of `tox -e mutation`).

The score per module and overall, and every mutant not killed with its diff
and its class: an equivalent form (a falsy default for a falsy default, a
Keras argument Keras fills in the same way, numpy's default dtype), code
that only the crosscheck or full-size tiers reach (the mutation run uses the
default tier), or open: a gap in the tests, counted and listed as such.
"""

import argparse
import collections
import platform
import re
import sys
import time
from pathlib import Path

from mutmut.__main__ import SourceFileMutationData, status_by_exit_code, walk_mutatable_files
from mutmut.mutation.diff_apply import get_diff_for_mutant

NUMERICS = re.compile(
    r"distilbert_hub\.(layers\.|distilbert_backbone|distilbert_(text|token)_classifier\.|"
    r"distilbert_masked_lm\.|distilbert_question_answerer\.|distilbert_multiple_choice\.|preprocessing)"
)

# (pattern over "-old +new", class, why)
EQUIVALENT = [
    (r"include_self=None", "equivalent", "`include_self=None` is falsy like `False` in Keras' `_flatten_layers`"),
    (
        r"getattr\([^)]*, None\)",
        "equivalent",
        "a `None` default where `False` was: both falsy in the test that reads it",
    ),
    (
        r'"loss_weights": \{[^}]*(XX\w+XX|START_LOGITS|END_LOGITS)',
        "equivalent",
        "Keras flattens a dict of loss weights in output order: a renamed key with the same 0.5 is the same weights",
    ),
    (
        r"clamp_\((None, high|low, None|low, |, high)\)",
        "equivalent",
        "inputs x 127 / (max|inputs| + eps) lies strictly inside [-127, 127]: the clamp never binds",
    ),
    (r"self\.built = (None|False)", "equivalent", "Keras' build wrapper sets `built = True` after `build` returns"),
    (
        r"ops\.cast\(mask_positions, None\)",
        "equivalent",
        "positions cast to float32 stay exact below 2**24, and take_along_axis casts its indices back",
    ),
    (
        r"include_self=True",
        "equivalent",
        "the model itself is no Dense and has no quantization mode, so the filter drops it",
    ),
    (
        r"return policy_map if \(len\(policy_map\)\) or True",
        "equivalent",
        "an empty `DTypePolicyMap` is falsy like None: the caller's `or self.dtype_policy` takes over",
    ),
    (
        r'isinstance\(x, dict\) or|\(isinstance\(x, dict\) and "token_ids" in x\) or True|\)\[\+1\] if isinstance'
        r"|np\.iinfo\(None\)",
        "equivalent",
        "labels are checked after `check_inputs`, so `x` is a dict holding 2-D `token_ids` there",
    ),
    (
        r'MeanSquaredError\(\), "(XXmetricsXX|METRICS)": \[\]',
        "equivalent",
        "no metrics either way: `compile` takes a missing default as None, the same as []",
    ),
    (
        r'getattr\(layer, "lora_enabled", (True)?\)|getattr\(self, "inputs_quantizer", \)',
        "equivalent",
        "every Keras 3 Dense has `lora_enabled`, and every int8 one `inputs_quantizer`: the default is never read",
    ),
    (r"h5py\.File\(filepath, \)", "equivalent", "h5py opens a file read-only by default"),
    (
        r"ops\.cast\((scores|padding_mask|token_ids), None\)",
        "equivalent",
        "a cast to None is a cast to floatx (float32): the scores are float32 already, a float mask selects "
        "as a bool one, and float32 ids are exact below 2**24",
    ),
    (
        r"ops\.cast\(positions, None\)",
        "equivalent",
        "float32 positions added to float32 embeddings: the same sum; under mixed precision one bf16 rounding "
        "fewer before the LayerNorm casts to bf16",
    ),
    (r"shape\(token_ids\)\[\+1\]|token_ids\.shape\[\+1\]", "equivalent", "ids are 2-D (checked): axis 1 is the last"),
    (
        r'filterwarnings\("ignore", \)',
        "equivalent",
        "the filter wraps one softmax call, which raises no other warning",
    ),
    (
        r"np\.asarray\(p, \)",
        "equivalent",
        "the int64 pieces are written into the int32 id array: the same values",
    ),
    (
        r"batch_size=(33|None)(, verbose|\):)|predict\(windows\.model_inputs\(\), verbose=0\)|verbose=None\)",
        "equivalent",
        "the batch size changes no window's logits, and Keras' predict is silent for verbose=None as for 0",
    ),
    (r"approximate=None", "equivalent", "`approximate=None` is falsy: the exact erf GELU either way"),
    (
        r"dtype=None\)|np\.(arange|empty)\((\([^()]*\)|[^()])*, \)(\[.*\])?$",
        "equivalent",
        "numpy's default dtype is float64 (or int64 promoted to float64 by the next operation)",
    ),
    (
        r"angles\[:, 1::2\]",
        "equivalent",
        "the sinusoidal angles of columns 2k and 2k+1 are equal by construction (transformers' formula)",
    ),
    (r"ops\.softmax\(scores, \)", "equivalent", "Keras' softmax normalizes over axis=-1 by default"),
    (
        r"ops\.cast\(weights, None\)",
        "equivalent",
        "the dropout layer's `__call__` casts a float32 input to the compute dtype, so the weighted sum runs "
        "in it either way (tests/test_mixed_precision.py::test_attention_matmuls_run_in_the_compute_dtype)",
    ),
    (
        r"hidden_states_shape\[:(\+1|-2)\] \+ \(self\.intermediate_dim",
        "equivalent",
        "`Dense.build` reads only the last dimension of the shape it is given",
    ),
    (
        r'filterwarnings\("ignore", "([^"A-Z]*|[^"a-z]*)"\)',
        "equivalent",
        "`warnings.filterwarnings` matches its message pattern case-insensitively",
    ),
]
OTHER_TIERS = re.compile(r"distilbert_hub\.convert\.__main__|hf_config_updates|export_to_transformers")
OTHER_TIERS_WHY = (
    "reached by `tox -e crosscheck` (live transformers) or a subprocess, which the default-tier "
    "mutation run does not trace"
)


def diff_lines(name, path):
    diff = get_diff_for_mutant(name, path=path)
    changed = [line for line in diff.splitlines() if line[:1] in "-+" and not line.startswith(("---", "+++"))]
    return changed[-2:] if len(changed) >= 2 else changed


def classify(name, changed):
    text = "\n".join(changed)
    added = "\n".join(line for line in changed if line.startswith("+"))
    for pattern, kind, why in EQUIVALENT:
        if re.search(pattern, added):
            return kind, why
    # `training` left out or None: only when nothing else on the line changed.
    removed = "\n".join(line[1:] for line in changed if line.startswith("-"))
    for form in ("training=None", ""):
        if "training=training" in removed and added and added[1:] == removed.replace("training=training", form):
            return "equivalent", "Keras passes the outer call's `training` to nested layers when it is None or left out"
    if OTHER_TIERS.search(name):
        return "other tier", OTHER_TIERS_WHY
    if re.search(r"name=(None|\"XX|\"[A-Z_]+\")", text):
        return "open", "a Keras layer or variable name no default-tier test reads"
    return "open", ""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/mutation.md")
    parser.add_argument("--minutes", type=float, help="wall time of the run, for the record")
    parser.add_argument("--note", help="a Markdown file whose text goes under the score (what this run was)")
    args = parser.parse_args()

    per_module = collections.defaultdict(collections.Counter)
    not_killed = []
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        for name, exit_code in sorted(data.exit_code_by_key.items()):
            status = status_by_exit_code[exit_code]
            module = name.split(".x")[0]
            per_module[module][status] += 1
            if status not in ("killed", "timeout", "not checked"):
                not_killed.append((name, status, path))

    def score(counter):
        detected = counter["killed"] + counter["timeout"]
        total = detected + counter["survived"] + counter["no tests"]
        return detected, total

    total = sum(per_module.values(), collections.Counter())
    detected, considered = score(total)
    lines = [
        "# Mutation testing",
        "",
        "`tox -e mutation` runs mutmut over `src/distilbert_hub/` and `harness/compare.py` against the default "
        "test tier on the torch backend; mutmut runs, per mutant, only the tests that reach the mutated function "
        "(fastest first, stopping at the first failure). Error and warning text is not mutated (tests match "
        "messages with a regex search); the conditions that raise them are.",
        "",
        f"Machine: {platform.processor() or platform.machine()}, 2 cores"
        + (f"; wall time {args.minutes:.0f} min" if args.minutes else "")
        + f"; generated {time.strftime('%Y-%m-%d')}.",
        "",
        f"**Score: {detected} of {considered} mutants detected ({detected / considered:.1%})**; "
        f"{total['survived']} survived, {total['no tests']} reached by no default-tier test"
        + (f"; {total['not checked']} not checked when the run was stopped." if total["not checked"] else "."),
        "",
        *([Path(args.note).read_text(encoding="utf-8").strip(), ""] if args.note else []),
        "| module | killed | timeout | survived | no tests | not checked | score |",
        "|---|---|---|---|---|---|---|",
    ]
    for module, counter in sorted(per_module.items()):
        d, c = score(counter)
        lines.append(
            f"| `{module}` | {counter['killed']} | {counter['timeout']} | {counter['survived']} "
            f"| {counter['no tests']} | {counter['not checked']} | {f'{d / c:.0%}' if c else 'n/a'} |"
        )

    classified = []
    for name, status, path in not_killed:
        changed = diff_lines(name, path)
        kind, why = ("other tier", OTHER_TIERS_WHY) if status == "no tests" else classify(name, changed)
        classified.append((name, status, kind, why, changed))
    kinds = collections.Counter((NUMERICS.search(n) is not None, k) for n, _, k, _, _ in classified)
    lines += [
        "",
        "## What was not killed",
        "",
        "| | equivalent | other tier | open |",
        "|---|---|---|---|",
        f"| numerics and preprocessing (`layers/`, backbone, heads, `preprocessing.py`) "
        f"| {kinds[(True, 'equivalent')]} | {kinds[(True, 'other tier')]} | {kinds[(True, 'open')]} |",
        f"| everything else | {kinds[(False, 'equivalent')]} | {kinds[(False, 'other tier')]} "
        f"| {kinds[(False, 'open')]} |",
        "",
        "Each mutant below: its name, status and class, why when the class says it, and the changed line.",
    ]
    for numerics in (True, False):
        lines += ["", "### " + ("Numerics and preprocessing" if numerics else "Everything else"), ""]
        for name, status, kind, why, changed in classified:
            if (NUMERICS.search(name) is not None) != numerics:
                continue
            lines.append(f"- `{name}` ({status}, {kind}){': ' + why if why else ''}")
            lines += [f"  `{line.strip()[:160]}`" for line in changed]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"score {detected}/{considered} ({detected / considered:.1%}); wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
