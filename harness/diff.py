"""Compare two parity reports (`parity.json`): what a change did to every
case's error on every backend, even inside tolerance.

    python -m harness diff BASE.json HEAD.json [--fail-on-regression] [--out FILE.md]

Flags an error that grew more than GROWTH times, one that crossed half its
tolerance, a failure, and a case that disappeared; prints Markdown fit for a
pull-request comment.
"""

import json
from pathlib import Path

GROWTH = 10.0
# Errors below this are rounding noise: growth from 1e-9 to 2e-8 is no news.
NOISE_FLOOR = 1e-7


def worst_errors(report):
    """{(case, backend): (worst max abs error, its atol, passed)} of a parity.json."""
    found = {}
    for backend, result in report.items():
        for case_id, case in result.get("cases", {}).items():
            if "error" in case:
                found[case_id, backend] = (None, None, False)
                continue
            outputs = case["outputs"].values()
            worst = max(outputs, key=lambda o: o["max_abs_error"] / max(o["atol"], 1e-30))
            found[case_id, backend] = (worst["max_abs_error"], worst["atol"], all(o["passed"] for o in outputs))
    return found


def flags_for(before, after):
    """Why a (case, backend) deserves a look, or []."""
    if after is None:
        return ["removed"]
    error, atol, passed = after
    if not passed:
        return ["FAILS"]
    if before is None:
        return []
    old_error = before[0]
    flags = []
    if old_error is not None and error > GROWTH * max(old_error, NOISE_FLOOR):
        flags.append(f"grew {error / max(old_error, NOISE_FLOOR):.0f}x")
    if atol and error > atol / 2 and (old_error is None or old_error <= atol / 2):
        flags.append("passed half its tolerance")
    return flags


def diff(base, head):
    """(rows, regressions): one row per (case, backend) of either report."""
    before, after = worst_errors(base), worst_errors(head)
    rows, regressions = [], 0
    for key in sorted(set(before) | set(after)):
        flags = flags_for(before.get(key), after.get(key))
        if key not in before:
            flags = ["added"] + flags
        regressions += any(f for f in flags if f != "added")
        rows.append((key, before.get(key), after.get(key), flags))
    return rows, regressions


def _fmt(entry):
    if entry is None:
        return "-"
    error, atol, passed = entry
    return "error" if error is None else f"{error:.1e}"


def markdown(rows, regressions):
    flagged = [row for row in rows if row[3]]
    lines = [f"### Parity diff: {len(rows)} case x backend pairs, {regressions} to look at", ""]
    if not flagged:
        lines.append("No error grew more than 10x, crossed half its tolerance or failed.")
    else:
        lines += ["| case | backend | before | after | tolerance | note |", "|---|---|---|---|---|---|"]
        for (case_id, backend), old, new, flags in flagged:
            atol = (new or old)[1]
            lines.append(
                f"| {case_id} | {backend} | {_fmt(old)} | {_fmt(new)} | "
                f"{'-' if atol is None else f'{atol:.0e}'} | {', '.join(flags)} |"
            )
    unchanged = len(rows) - len(flagged)
    lines += ["", f"{unchanged} other pair(s) moved less than {GROWTH:.0f}x and stay under half their tolerance."]
    return "\n".join(lines) + "\n"


def main(base_path, head_path, fail_on_regression=False, out=None):
    base, head = (json.loads(Path(p).read_text()) for p in (base_path, head_path))
    rows, regressions = diff(base, head)
    text = markdown(rows, regressions)
    print(text)
    if out:
        Path(out).write_text(text)
    return 1 if fail_on_regression and regressions else 0
