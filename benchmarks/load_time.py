"""Load time and peak memory of the full-size smallest preset from a local
Hugging Face directory: ours on each Keras backend vs
`transformers.DistilBertModel.from_pretrained`, each in its own process.

    tox -e bench-load                      # or: python benchmarks/load_time.py --checkpoint DIR

Rows "<backend> preset" load the same weights from a `save_to_preset` directory written from it.

Prints a table, writes reports/bench_load.json (CPU named). The checkpoint
defaults to the one `tox -e checkpoints` writes into .cache/hf-hub.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_description, versions

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CHECKPOINT = REPO_ROOT / ".cache/hf-hub/hub/models--distilbert--distilbert-base-uncased/snapshots" / ("0" * 40)

# Runs in a child process: import, then time `load()` `repeats` times; report
# the resident memory after imports and at its peak (Linux ru_maxrss is KiB).
CHILD = r"""
import json, os, resource, sys, time
def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
kind, directory, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
if kind.startswith("save:"):  # write our preset of the checkpoint (not timed)
    os.environ["KERAS_BACKEND"] = kind.split(":")[1]
    import distilbert_hub
    distilbert_hub.DistilBertBackbone.from_preset(directory).save_to_preset(sys.argv[4])
    print("{}")
    sys.exit()
if kind == "transformers":
    import torch, transformers
    load = lambda: transformers.DistilBertModel.from_pretrained(directory)
else:
    os.environ["KERAS_BACKEND"] = kind.split(" ")[0]
    import keras, distilbert_hub
    load = lambda: distilbert_hub.DistilBertBackbone.from_preset(directory)
import gc
baseline = rss_mib()
times = []
for repeat in range(repeats):
    start = time.perf_counter(); model = load(); times.append(time.perf_counter() - start)
    if repeat == 0:  # the peak of one load, before repeats add garbage
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    del model
    gc.collect()
print(json.dumps({"times": times, "baseline_mib": baseline, "peak_mib": peak}))
"""


def measure(kind, directory, repeats, *extra):
    result = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(directory), str(repeats), *extra],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    if result.returncode != 0:
        raise SystemExit(f"{kind}: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    parser.add_argument("--backends", default="jax,tensorflow,torch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(REPO_ROOT / "reports" / "bench_load.json"))
    args = parser.parse_args(argv)
    directory = Path(args.checkpoint)
    if not (directory / "config.json").is_file():
        raise SystemExit(f"{directory}: no checkpoint; run `tox -e checkpoints` or pass --checkpoint.")
    weights_mib = sum(p.stat().st_size for p in directory.glob("*.safetensors")) / 2**20
    backends = args.backends.split(",")
    results = {kind: measure(kind, directory, args.repeats) for kind in ["transformers", *backends]}
    # The same weights from our own preset format (`save_to_preset`: config.json + model.weights.h5).
    with tempfile.TemporaryDirectory() as scratch:
        preset = Path(scratch) / "preset"
        measure(f"save:{backends[0]}", directory, 0, preset)
        results |= {f"{kind} preset": measure(f"{kind} preset", preset, args.repeats) for kind in backends}
    # The first load in a process is what a user waits for (transformers
    # imports its model code lazily then); later ones show the steady cost.
    cold_reference = results["transformers"]["times"][0]
    warm_reference = statistics.median(results["transformers"]["times"][1:])
    cpu = cpu_description()
    print(f"CPU: {cpu['model']} ({cpu['isa']}; {' '.join(cpu['flags'])}); checkpoint {weights_mib:.0f} MiB float32")
    print(
        f"{'loader':<18}{'first s':>9}{'ratio':>8}{'warm s':>9}{'ratio':>8}"
        f"{'peak RSS above baseline MiB':>30}{'x weights':>11}"
    )
    for kind, result in results.items():
        cold, warm = result["times"][0], statistics.median(result["times"][1:])
        result |= {
            "first_s": cold,
            "first_ratio_to_transformers": cold / cold_reference,
            "warm_median_s": warm,
            "warm_ratio_to_transformers": warm / warm_reference,
            "peak_above_baseline_mib": result["peak_mib"] - result["baseline_mib"],
        }
        result["peak_ratio_to_weights"] = result["peak_above_baseline_mib"] / weights_mib
        print(
            f"{kind:<18}{cold:>9.3f}{cold / cold_reference:>7.2f}x{warm:>9.3f}{warm / warm_reference:>7.2f}x"
            f"{result['peak_above_baseline_mib']:>30.0f}{result['peak_ratio_to_weights']:>10.2f}x"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "cpu": cpu,
                "checkpoint_mib": weights_mib,
                "repeats": args.repeats,
                "versions": versions("keras", "jax", "tensorflow", "tensorflow-cpu", "torch", "transformers", "numpy"),
                "results": results,
            },
            indent=1,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
