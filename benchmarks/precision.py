"""Precision report: every dtype policy on every backend against the float32
transformers goldens (a script, not a test; `tox -e precision`).

Each backend runs in its own process. Per policy it prints the worst per-token
cosine of the backbone's hidden states (tiny 4-block golden and, with
`--full-size`, the full-size smallest preset), the worst head-logit cosine
over the five task heads, and the masked LM's argmax agreement. Writes
reports/precision.json and reports/precision.md.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import cpu_description

BACKENDS = ("jax", "tensorflow", "torch")
FULL_SIZE_CASE = "preset_distil_bert_base_en_uncased"


def settings():
    """(label, dtype policy, quantization mode) for every row of the report."""
    from harness.precision import POLICIES, QUANTIZATION_MODES

    return [(p, p, None) for p in POLICIES] + [(f"{m}_from_float32", "float32", m) for m in QUANTIZATION_MODES]


def measure_backend(full_size):
    from harness.precision import BACKBONE_CASE, HEAD_CASES, measure

    cases = [BACKBONE_CASE, *HEAD_CASES] + ([FULL_SIZE_CASE] if full_size else [])
    rows = []
    for label, policy, mode in settings():
        for case_id in cases:
            try:
                results = measure(case_id, policy, quantize=mode)
            except Exception as error:  # a backend that cannot run a dtype: reported, not fatal
                rows.append({"policy": label, "case": case_id, "error": f"{type(error).__name__}: {error}"[:300]})
                continue
            for r in results:
                rows.append(
                    {
                        "policy": label,
                        "case": case_id,
                        "output": r.output,
                        "min_cosine": r.min_cosine,
                        "argmax_agreement": r.argmax_agreement,
                        "masked_lm": r.masked_lm,
                    }
                )
    return rows


def summary(rows, policy):
    from harness.precision import BACKBONE_CASE, HEAD_CASES

    def worst(predicate):
        values = [r["min_cosine"] for r in rows if r["policy"] == policy and "error" not in r and predicate(r)]
        return min(values) if values else None

    errors = [r for r in rows if r["policy"] == policy and "error" in r]
    agreements = [r["argmax_agreement"] for r in rows if r["policy"] == policy and r.get("masked_lm")]
    return {
        "tiny": worst(lambda r: r["case"] == BACKBONE_CASE),
        "full": worst(lambda r: r["case"] == FULL_SIZE_CASE),
        "heads": worst(lambda r: r["case"] in HEAD_CASES),
        "mlm": min(agreements) if agreements else None,
        "errors": errors,
    }


def fmt(value, digits=6):
    return "n/a" if value is None else f"{value:.{digits}f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=",".join(BACKENDS))
    parser.add_argument("--full-size", action="store_true", help="also the full-size smallest preset golden")
    parser.add_argument("--out", default="reports")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure_backend(args.full_size)))
        return 0

    collected = {}
    for backend in args.backend.split(","):
        print(f"measuring {backend} ...", file=sys.stderr, flush=True)
        command = [sys.executable, __file__, "--child"] + (["--full-size"] if args.full_size else [])
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
        collected[backend] = json.loads(done.stdout.strip().splitlines()[-1])

    lines = [
        f"CPU: {cpu_description()}",
        "",
        "Worst per-token cosine against the float32 transformers goldens (hidden states of every layer; head "
        "logits of the five tasks) and the masked LM's argmax agreement.",
        "",
        "| policy | backend | hidden, tiny 4 blocks | hidden, full-size preset | head logits | masked-LM argmax |",
        "|---|---|---|---|---|---|",
    ]
    for policy, _, _ in settings():
        for backend, rows in collected.items():
            s = summary(rows, policy)
            lines.append(
                f"| {policy} | {backend} | {fmt(s['tiny'])} | {fmt(s['full'])} | {fmt(s['heads'])} "
                f"| {fmt(s['mlm'], 4)} |"
            )
            for error in s["errors"]:
                lines.append(f"| {policy} | {backend} | cannot run {error['case']}: {error['error']} | | | |")
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "precision.md").write_text(table + "\n", encoding="utf-8")
    (out / "precision.json").write_text(json.dumps({"cpu": cpu_description(), "results": collected}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
