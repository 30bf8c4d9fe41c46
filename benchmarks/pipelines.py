"""Pipeline methods vs transformers' pipelines (a script, not a test; `tox -e bench-pipelines`).

On DistilBERT-base size with seeded weights (written once by our
`export_to_transformers`, so both sides run the same weights), each in its
own process: `classify`, `fill_mask`, `entities` and the embedder's
`predict` on jax, tensorflow and torch against transformers'
`text-classification`, `fill-mask`, `token-classification` and
`feature-extraction` (mean-pooled in numpy) pipelines, on the same 32 texts at
batch size 1 and 32. Reports the median of `--repeats` runs after a warm-up
(medians: the machine may be shared) and the ratio pipeline time / ours
(above 1: ours is faster), with the CPU, its flags and the load average named.
`answer` is not here: its reference pipeline exists only in transformers 4.x.

Writes reports/bench_pipelines.json and .md.
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO_ROOT, cpu_description, run_json_child, versions

VOCABULARY = REPO_ROOT / "harness/fixtures/bert_base_uncased_vocab.txt"
TASKS = ("classify", "fill_mask", "entities", "embed")

CHILD = r"""
import json, os, statistics, sys, time
kind, task, workdir, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
SIZE = dict(num_layers=6, num_heads=12, hidden_dim=768, intermediate_dim=3072)
texts = json.load(open(os.path.join(workdir, "texts.json")))
if task == "fill_mask":
    texts = [" ".join(w if i != 2 else "[MASK]" for i, w in enumerate(t.split())) for t in texts]
def median_seconds(run):
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter(); run(); times.append(time.perf_counter() - start)
    return statistics.median(times)
checkpoint = os.path.join(workdir, task)
if kind == "export":
    os.environ["KERAS_BACKEND"] = "torch"
    import keras, distilbert_hub as hub
    keras.utils.set_random_seed(0)
    # "[MASK]" typed in a text is the mask token, as in a checkpoint transformers wrote
    # (split_special_tokens false): the fill-mask pipeline looks for it.
    tokenizer = hub.DistilBertTokenizer(sys.argv[5], lowercase=True, special_tokens_in_strings=True)
    backbone = hub.DistilBertBackbone(vocabulary_size=tokenizer.vocabulary_size(), **SIZE)
    preprocessor = hub.DistilBertTextClassifierPreprocessor(tokenizer, sequence_length=128)
    model = {
        "classify": lambda: hub.DistilBertTextClassifier(backbone, num_classes=3, preprocessor=preprocessor),
        "fill_mask": lambda: hub.DistilBertMaskedLM(
            backbone, preprocessor=hub.DistilBertMaskedLMPreprocessor(tokenizer, 128)
        ),
        "entities": lambda: hub.DistilBertTokenClassifier(backbone, num_classes=7, preprocessor=preprocessor),
        "embed": lambda: hub.DistilBertTextEmbedder(backbone, preprocessor=preprocessor),
    }[task]()
    model.export_to_transformers(checkpoint)
    print(json.dumps({}))
    sys.exit()
result = {}
if kind == "transformers":
    import numpy as np, torch
    from transformers import pipeline
    torch.set_grad_enabled(False)
    name = {"classify": "text-classification", "fill_mask": "fill-mask", "entities": "token-classification",
            "embed": "feature-extraction"}[task]
    reference = pipeline(name, model=checkpoint, device="cpu")
    def run(batch):
        out = reference(texts, batch_size=batch)
        if task == "embed":
            [np.mean(np.asarray(o)[0], axis=0) for o in out]
    for batch in (1, 32):
        result[str(batch)] = median_seconds(lambda: run(batch))
else:
    os.environ["KERAS_BACKEND"] = kind
    import distilbert_hub as hub
    cls = {"classify": hub.DistilBertTextClassifier, "fill_mask": hub.DistilBertMaskedLM,
           "entities": hub.DistilBertTokenClassifier, "embed": hub.DistilBertTextEmbedder}[task]
    model = cls.from_preset(checkpoint)
    def run(batch):
        if task == "classify":
            model.classify(texts, batch_size=batch)
        elif task == "fill_mask":
            model.fill_mask(texts, batch_size=batch)
        elif task == "entities":
            model.entities(texts, batch_size=batch)
        else:
            model.predict(texts, batch_size=batch, verbose=0)
    for batch in (1, 32):
        result[str(batch)] = median_seconds(lambda: run(batch))
print(json.dumps(result))
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default="jax,tensorflow,torch")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--out", default=str(REPO_ROOT / "reports"))
    args = parser.parse_args(argv)
    corpus = json.loads((REPO_ROOT / "harness/fixtures/tokenizer_corpus.json").read_text(encoding="utf-8"))["texts"]
    texts = [entry["text"] for entry in corpus if len(entry["text"].split()) >= 4][:32]
    texts = (texts * 32)[:32]
    backends = args.backends.split(",")
    report = {"cpu": cpu_description(), "versions": versions("keras", "torch", "jax", "tensorflow", "transformers")}
    report["load_average_before"] = os.getloadavg()
    report["seconds"] = {}
    with tempfile.TemporaryDirectory() as workdir:
        Path(workdir, "texts.json").write_text(json.dumps(texts))
        for task in args.tasks.split(","):
            run_json_child(CHILD, "export", task, workdir, 1, VOCABULARY)
            report["seconds"][task] = {
                kind: run_json_child(CHILD, kind, task, workdir, args.repeats) for kind in ["transformers", *backends]
            }
            print(task, json.dumps(report["seconds"][task]), flush=True)
    report["load_average_after"] = os.getloadavg()
    lines = [
        f"CPU: {report['cpu']}; load average {report['load_average_before']} before, "
        f"{report['load_average_after']} after; median of {args.repeats} runs",
        "",
        "| method | batch | transformers pipeline (s) | " + " | ".join(f"{b} (s, ratio)" for b in backends) + " |",
        "|---|---|---|" + "---|" * len(backends),
    ]
    for task, timings in report["seconds"].items():
        for batch in ("1", "32"):
            reference = timings["transformers"].get(batch)
            cells = []
            for backend in backends:
                ours = timings[backend].get(batch)
                cells.append(f"{ours:.3f} ({reference / ours:.2f}x)" if ours and reference else str(timings[backend]))
            lines.append(
                f"| {task} | {batch} | {reference if reference is None else f'{reference:.3f}'} | "
                + " | ".join(cells)
                + " |"
            )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_pipelines.json").write_text(json.dumps(report, indent=2))
    (out / "bench_pipelines.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
