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
        r"training=None|, \)",
        "equivalent",
        "Keras passes the outer call's `training` to nested layers when it is None or left out",
    ),
    (r"approximate=None", "equivalent", "`approximate=None` is falsy: the exact erf GELU either way"),
    (
        r"dtype=None\)|np\.(arange|empty)\([^)]*, \)",
        "equivalent",
        "numpy's default dtype is float64 (or int64 promoted to float64 by the next operation)",
    ),
    (
        r"angles\[:, 1::2\]",
        "equivalent",
        "the sinusoidal angles of columns 2k and 2k+1 are equal by construction (transformers' formula)",
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
