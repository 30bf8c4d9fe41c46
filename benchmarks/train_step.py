"""One fine-tuning optimizer step of DistilBERT-base (seeded weights, 2-class
sequence classifier, batch 16 x 128, dropout 0.1 as in training) on CPU:
ours on each Keras backend (`train_on_batch` with `trainer_optimizer`) vs
transformers eager (forward with labels, backward, `clip_grad_norm_`,
`torch.optim.AdamW` step), each in its own process, with peak memory.

    tox -e bench-train                  # or: python benchmarks/train_step.py --repeats 3

Prints a table (the CPU named) and writes reports/bench_train.json. The first
step of each (compilation, optimizer build) is timed apart; the median of the
following `--repeats` steps is the figure, as a ratio to transformers.
"""

import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_description, run_json_child, shape_arguments, versions

CHILD = r"""
import json, os, resource, sys, time
import numpy as np
kind, batch, length, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(0)
ids = rng.integers(1000, 30000, (batch, length)).astype("int32")
mask = np.ones((batch, length), "int32")
labels = rng.integers(0, 2, batch).astype("int32")
if kind == "transformers":
    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification, get_linear_schedule_with_warmup
    torch.manual_seed(0)
    model = DistilBertForSequenceClassification(DistilBertConfig(attn_implementation="eager")).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, eps=1e-8, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, 0, 1000)
    x = dict(input_ids=torch.from_numpy(ids).long(), attention_mask=torch.from_numpy(mask).long(),
             labels=torch.from_numpy(labels).long())
    def step():
        model(**x).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step(); schedule.step(); optimizer.zero_grad()
else:
    os.environ["KERAS_BACKEND"] = kind
    import keras, distilbert_hub as hub
    keras.utils.set_random_seed(0)
    backbone = hub.DistilBertBackbone(vocabulary_size=30522, num_layers=6, num_heads=12, hidden_dim=768,
                                      intermediate_dim=3072, max_sequence_length=512)
    task = hub.DistilBertTextClassifier(backbone, num_classes=2)
    task.compile(optimizer=hub.trainer_optimizer(1000, weight_decay=0.01))
    x = {"token_ids": ids, "padding_mask": mask}
    step = lambda: task.train_on_batch(x, labels)
start = time.perf_counter(); step(); first = time.perf_counter() - start
times = []
for _ in range(repeats):
    start = time.perf_counter(); step(); times.append(time.perf_counter() - start)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"first_s": first, "times": times, "peak_mib": peak}))
"""


def main(argv=None):
    parser = shape_arguments(__doc__, batch=16, length=128, repeats=3)
    parser.add_argument("--backends", nargs="+", default=["jax", "tensorflow", "torch"])
    args = parser.parse_args(argv)
    results = {}
    for kind in ["transformers", *args.backends]:
        print(f"  {kind} ...", file=sys.stderr, flush=True)
        results[kind] = run_json_child(CHILD, kind, args.batch, args.length, args.repeats)
    reference = statistics.median(results["transformers"]["times"]) if "times" in results["transformers"] else None
    cpu = cpu_description()
    shape = f"batch {args.batch} x {args.length}"
    print(f"one optimizer step, DistilBERT-base classifier, {shape}, {cpu['model']} ({cpu['isa']})")
    print(f"{'':>14}{'step s':>9}{'first s':>9}{'speed vs transformers':>23}{'peak RSS MiB':>14}")
    for kind, result in results.items():
        if "error" in result:
            print(f"{kind:>14}  error: {result['error']}")
            continue
        median = statistics.median(result["times"])
        result["median_s"] = median
        result["speed_vs_transformers"] = reference / median if reference else None
        ratio = f"{reference / median:.2f}x" if reference else "-"
        print(f"{kind:>14}{median:>9.2f}{result['first_s']:>9.2f}{ratio:>23}{result['peak_mib']:>14.0f}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"batch": args.batch, "length": args.length, "cpu": cpu, "results": results}
    report["versions"] = versions("keras", "jax", "tensorflow", "torch", "transformers")
    (out / "bench_train.json").write_text(json.dumps(report, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
