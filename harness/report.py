"""The parity report: every golden case on every requested backend.

    python -m harness report [--backend jax,tensorflow,torch] [--goldens DIR]
                             [--tier default|large|extra_large] [--layers] [--out DIR]
    python -m harness diff BASE.json HEAD.json [--fail-on-regression] [--out FILE.md]

Each backend runs in its own Python process (`python -m harness run-backend`),
since a process holds one Keras backend and TensorFlow must not meet torch's
LLVM. Prints a case x backend table of max abs error on real tokens against
the tolerance, writes `parity.json`, `parity.md` and (with matplotlib)
`parity_layers.png` to --out, and exits 1 on any failure.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.golden import DEFAULT_GOLDENS_DIR, GoldenError, case_ids, goldens_dir, load_case, verify_goldens_directory

BACKENDS = ("jax", "tensorflow", "torch")
# A report tier includes the tiers below it.
TIER_CASES = {
    "default": ("default",),
    "large": ("default", "large"),
    "extra_large": ("default", "large", "extra_large"),
}


# --- one backend, in this process ---------------------------------------------


def run_backend(goldens, tier, output_path):
    import keras

    from harness.devices import current_profile, use_full_float32
    from harness.runner import compare_outputs, run_case

    use_full_float32()
    profile = current_profile()
    results = {"backend": keras.backend.backend(), "keras": keras.__version__, "device": profile.device, "cases": {}}
    selected = case_ids(goldens, tiers=TIER_CASES[tier])
    for number, case_id in enumerate(selected, start=1):
        print(f"  {keras.backend.backend()}: {number}/{len(selected)} {case_id}", file=sys.stderr, flush=True)
        try:
            golden = load_case(case_id, goldens)
            comparisons = compare_outputs(golden, run_case(golden))
        except GoldenError as error:
            results["cases"][case_id] = {"error": f"golden refused: {error}"}
            continue
        except Exception as error:  # a crash in one case must not hide the others
            results["cases"][case_id] = {"error": f"{type(error).__name__}: {error}"}
            continue
        results["cases"][case_id] = {
            "kind": golden.kind,
            "outputs": {
                c.output: {
                    "max_abs_error": c.max_abs_error,
                    "atol": c.atol,
                    "rtol": c.rtol,
                    "passed": c.passed,
                    "report": None if c.passed else c.report(),
                }
                for c in comparisons
            },
        }
    Path(output_path).write_text(json.dumps(results, indent=1, sort_keys=True))


# --- all backends, each in a child process ------------------------------------


def collect(backends, goldens, tier):
    collected = {}
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "result.json"
            env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
            command = [
                sys.executable,
                "-m",
                "harness",
                "run-backend",
                "--goldens",
                str(goldens),
                "--tier",
                tier,
                "--json",
                str(out),
            ]
            print(f"running {backend} ...", file=sys.stderr, flush=True)
            child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            tail = []
            for line in child.stdout:  # progress per case as it comes; the tail explains a crash
                if line.startswith(f"  {backend}: "):
                    print(line, end="", file=sys.stderr, flush=True)
                tail = (tail + [line])[-60:]
            if child.wait() != 0 or not out.is_file():
                collected[backend] = {"crashed": "".join(tail)[-3000:]}
            else:
                collected[backend] = json.loads(out.read_text())
    return collected


def tolerance_text(output):
    """An output's tolerance as the comparison applies it: atol, plus rtol
    times the expected value where the golden gives one (gradient losses,
    learning rates)."""
    atol, rtol = output["atol"], output.get("rtol", 0.0)
    return f"{atol:.0e}+{rtol:.0e}|x|" if rtol else f"{atol:.0e}"


def case_summary(case):
    """(worst error, its tolerance as text, passed, error text) for one case
    on one backend. The worst output is the one nearest its tolerance; an
    rtol counts at |expected| = 1, as the reports do not keep the values."""
    if case is None:
        return None, None, False, "not run"
    if "error" in case:
        return None, None, False, case["error"]
    outputs = case["outputs"].values()
    worst = max(outputs, key=lambda o: o["max_abs_error"] / max(o["atol"] + o.get("rtol", 0.0), 1e-30))
    return worst["max_abs_error"], tolerance_text(worst), all(o["passed"] for o in outputs), None


def cell(case):
    error, tolerance, passed, problem = case_summary(case)
    if problem:
        return "not run" if case is None else "ERROR"
    return f"{error:.1e} <= {tolerance} ok" if passed else f"{error:.1e} > {tolerance} FAIL"


def build_tables(collected, backends, layers):
    all_cases = sorted({c for r in collected.values() for c in r.get("cases", {})})
    width = max([len("case")] + [len(c) for c in all_cases]) + 2
    header = "case".ljust(width) + "".join(b.ljust(30) for b in backends)
    lines = [header, "-" * len(header)]
    md = ["| case | " + " | ".join(backends) + " |", "|---" * (len(backends) + 1) + "|"]
    for case_id in all_cases:
        cells = [cell(collected[b].get("cases", {}).get(case_id)) for b in backends]
        lines.append(case_id.ljust(width) + "".join(c.ljust(30) for c in cells))
        md.append(f"| {case_id} | " + " | ".join(cells) + " |")
        if layers:
            outputs = sorted(
                {o for b in backends for o in collected[b].get("cases", {}).get(case_id, {}).get("outputs", {})}
            )
            for output in outputs:
                values = []
                for b in backends:
                    o = collected[b].get("cases", {}).get(case_id, {}).get("outputs", {}).get(output)
                    values.append(f"{o['max_abs_error']:.1e}" if o else "-")
                lines.append(("  " + output).ljust(width) + "".join(v.ljust(30) for v in values))
    return lines, md


# Exact (zero) errors are drawn here, so they stay on the log axis.
ZERO_FLOOR = 1e-9


def layer_errors(collected, backend, family):
    """{layer: worst max abs error} over the cases of one family on one backend."""
    per_layer = {}
    for case_id, case in collected[backend].get("cases", {}).items():
        if case_family(case_id) != family:
            continue
        for name, output in case.get("outputs", {}).items():
            if name.startswith("hidden_states/"):
                layer = int(name.split("/")[1])
                per_layer[layer] = max(per_layer.get(layer, 0.0), output["max_abs_error"])
    return per_layer


def case_family(case_id):
    if case_id.startswith("preset_"):
        return "full-size presets"
    if case_id.startswith("backbone_"):
        return "tiny backbones"
    return None


def plot_layers(collected, backends, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return False
    families = sorted({case_family(c) for b in backends for c in collected[b].get("cases", {})} - {None})
    if not families:
        return False
    fig, axes = plt.subplots(1, len(families), figsize=(6 * len(families), 4.5), squeeze=False)
    for ax, family in zip(axes[0], families):
        tolerance = 0.0
        for backend in backends:
            per_layer = layer_errors(collected, backend, family)
            if not per_layer:
                continue
            xs = sorted(per_layer)
            ys = [max(per_layer[x], ZERO_FLOOR) for x in xs]
            ax.plot(xs, ys, marker="o", label=backend)
            exact = [x for x in xs if per_layer[x] == 0.0]
            if exact:
                ax.scatter(exact, [ZERO_FLOOR] * len(exact), marker="v", s=60, color="black", zorder=3)
            for case_id, case in collected[backend].get("cases", {}).items():
                if case_family(case_id) == family:
                    tolerance = max([tolerance] + [o["atol"] for o in case.get("outputs", {}).values()])
        if tolerance:
            ax.axhline(tolerance, color="red", linestyle="--", label=f"tolerance {tolerance:g}")
        ax.axhline(ZERO_FLOOR, color="grey", linestyle=":", label="exact (0), drawn at 1e-9")
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("hidden state index (0 = embeddings)")
        ax.set_ylabel("worst max abs error over cases")
        ax.set_title(f"{family}: per-layer error vs transformers")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def report(backends, goldens, tier, out_dir, layers):
    collected = collect(backends, goldens, tier)
    lines, md = build_tables(collected, backends, layers)
    all_cases = sorted({c for r in collected.values() for c in r.get("cases", {})})
    failures = []
    for backend in backends:
        result = collected[backend]
        if "crashed" in result:
            failures.append(f"{backend}: the backend process failed:\n{result['crashed']}")
            continue
        for case_id in all_cases:
            case = result["cases"].get(case_id)
            if case is None:
                failures.append(f"{backend}: case '{case_id}' was not run (the manifest changed during the report?)")
            elif "error" in case:
                failures.append(f"{backend}: case '{case_id}': {case['error']}")
            else:
                failures += [o["report"] for o in case["outputs"].values() if not o["passed"]]
    n_cases = len(all_cases)
    verdict = "PASS" if not failures else f"FAIL ({len(failures)} problem(s))"
    summary = f"parity ({tier} tier): {n_cases} case(s) x {len(backends)} backend(s): {verdict}"
    print("\n".join(lines))
    print()
    for failure in failures:
        print(failure)
    print(summary)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "parity.json").write_text(json.dumps(collected, indent=1, sort_keys=True))
    (out_dir / "parity.md").write_text("# Parity report\n\n" + "\n".join(md) + f"\n\n{summary}\n")
    plotted = plot_layers(collected, backends, out_dir / "parity_layers.png")
    print(f"wrote {out_dir}/parity.json, parity.md" + (", parity_layers.png" if plotted else ""))
    return 0 if not failures else 1


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m harness", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="run every golden on every backend and print the table")
    rep.add_argument("--backend", default=",".join(BACKENDS), help="comma-separated backends")
    rep.add_argument("--goldens", default=None, help="goldens folder (default: goldens/)")
    rep.add_argument(
        "--tier",
        choices=sorted(TIER_CASES),
        default="default",
        help="default: tiny goldens; large: + smallest preset at full size; extra_large: + every preset",
    )
    rep.add_argument("--layers", action="store_true", help="also print every output's error")
    rep.add_argument("--out", default="reports", help="folder for parity.json/.md/.png")
    compare_reports = sub.add_parser("diff", help="compare two parity.json reports (Markdown for a PR comment)")
    compare_reports.add_argument("base")
    compare_reports.add_argument("head")
    compare_reports.add_argument(
        "--fail-on-regression",
        action="store_true",
        help="exit 1 when an error grew >10x, passed half its tolerance or failed",
    )
    compare_reports.add_argument("--out", help="also write the Markdown here")
    one = sub.add_parser("run-backend", help="(internal) run every golden on $KERAS_BACKEND")
    one.add_argument("--goldens", default=None)
    one.add_argument("--tier", choices=sorted(TIER_CASES), default="default")
    one.add_argument("--json", required=True)
    args = parser.parse_args(argv)

    if args.command == "diff":
        from harness.diff import main as diff_main

        return diff_main(args.base, args.head, args.fail_on_regression, args.out)
    goldens = goldens_dir(args.goldens)
    if args.command == "run-backend":
        run_backend(goldens, args.tier, args.json)
        return 0
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown backend(s) {unknown}; choose from {', '.join(BACKENDS)}")
    if not backends:
        parser.error(f"no backend given; a gate that runs nothing must not pass (choose from {', '.join(BACKENDS)})")
    try:
        problems = verify_goldens_directory(goldens, registered_case_ids() if goldens == DEFAULT_GOLDENS_DIR else None)
        if not case_ids(goldens, tiers=TIER_CASES[args.tier]):
            problems.append(f"{goldens}: no case of the {args.tier} tier")
    except GoldenError as error:
        problems = [str(error)]
    if problems:
        print("parity: the goldens cannot be trusted, nothing was run:", file=sys.stderr)
        print("\n".join(f"  - {p}" for p in problems), file=sys.stderr)
        return 1
    return report(backends, goldens, args.tier, args.out, args.layers)


def registered_case_ids():
    """The ids of tools/golden_cases' registry (imported without transformers)."""
    from tools.golden_cases import load_all

    return set(load_all())
