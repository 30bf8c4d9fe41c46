"""Peak memory of `fit` on raw text does not grow with the number of texts:
the same tiny classifier trains one epoch on N short texts, each N in its own
process, and the peak resident memory is compared.

    python benchmarks/fit_memory.py [--backend torch] [--sizes 10000,200000]

Writes reports/bench_fit_memory.json (CPU named).
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_description, versions

REPO_ROOT = Path(__file__).resolve().parent.parent
CHILD = r"""
import json, resource, sys, time
import numpy as np, keras
import distilbert_hub as hub
count = int(sys.argv[1])
keras.utils.set_random_seed(0)
words = "the quick brown fox jumps over a lazy dog good bad movie book great terrible".split()
rng = np.random.default_rng(0)
texts = [" ".join(rng.choice(words, size=rng.integers(3, 12))) for _ in range(count)]
labels = rng.integers(0, 2, size=count)
tokenizer = hub.DistilBertTokenizer(sys.argv[2], lowercase=True)
backbone = hub.DistilBertBackbone(vocabulary_size=tokenizer.vocabulary_size(), num_layers=1, num_heads=2,
                                  hidden_dim=16, intermediate_dim=32, max_sequence_length=16)
model = hub.DistilBertTextClassifier(backbone, 2, preprocessor=hub.DistilBertTextClassifierPreprocessor(tokenizer, 16))
model.compile(optimizer="adam")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = time.perf_counter()
model.fit(texts, labels, batch_size=64, epochs=1, verbose=0)
print(json.dumps({"texts": count, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "peak_before_fit_mib": before, "fit_s": time.perf_counter() - start}))
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "torch"))
    parser.add_argument("--sizes", default="10000,200000")
    parser.add_argument("--out", default=str(REPO_ROOT / "reports" / "bench_fit_memory.json"))
    args = parser.parse_args(argv)
    vocabulary = REPO_ROOT / "harness" / "fixtures" / "bert_base_uncased_vocab.txt"
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        env = dict(os.environ, KERAS_BACKEND=args.backend, TF_CPP_MIN_LOG_LEVEL="3")
        child = subprocess.run(
            [sys.executable, "-c", CHILD, str(size), str(vocabulary)], capture_output=True, text=True, env=env
        )
        if child.returncode:
            raise SystemExit(child.stderr[-2000:])
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    cpu = cpu_description()
    print(f"CPU: {cpu['model']} ({cpu['isa']}); backend {args.backend}; one epoch, batch 64")
    print(f"{'texts':>8}{'peak RSS MiB':>14}{'of which fit':>14}{'fit s':>8}")
    for r in results:
        print(
            f"{r['texts']:>8}{r['peak_mib']:>14.0f}{r['peak_mib'] - r['peak_before_fit_mib']:>14.0f}{r['fit_s']:>8.1f}"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "cpu": cpu,
                "backend": args.backend,
                "results": results,
                "versions": versions("keras", "jax", "torch", "tensorflow"),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
