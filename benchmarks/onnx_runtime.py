"""ONNX Runtime speed of our ONNX export (a script, not a test; `tox -e bench-onnx`).

In one run, on one machine, with the same seeded DistilBERT-base weights
(written once by our `export_to_transformers`), for the backbone and the
sequence classifier, float32 and int8:
  * ONNX Runtime on our export (`export(format="onnx")`, `int8=True`);
  * ONNX Runtime on optimum's export of the same checkpoint
    (`optimum.exporters.onnx.main_export`), int8 by optimum's `ORTQuantizer`
    (dynamic, int8 weights per tensor; `int8=True` asks ONNX Runtime for the
    same kernels with 7-bit weights per column, see export/onnx.py);
  * transformers eager on torch (int8: `torch.ao.quantization.quantize_dynamic`
    of every Linear).
Each forward is the fastest of `--repeats` after warm-up (noise on a shared
machine only adds time), the three sides timed in turns, at batch x length
tokens, every session and torch with the same thread count; beside it, the
median and range over the rounds of optimum's time / ours in the same
round. The max abs difference from transformers float32 is recorded beside
each. Writes reports/bench_onnx.json and .md, CPU named.
"""

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_description, shape_arguments, versions

SIZE = {"num_layers": 6, "num_heads": 12, "hidden_dim": 768, "intermediate_dim": 3072}
VOCABULARY_SIZE = 30522
MODELS = {"backbone": ("feature-extraction", "last_hidden_state"), "classifier": ("text-classification", "logits")}


def race(runs, repeats, warmup=2):
    """{name: [time of each round]} of each run, taken in turns (the order
    rotating each round) so that the load of a shared machine falls on every
    side."""
    for run in runs.values():
        for _ in range(warmup):
            run()
    times = {name: [] for name in runs}
    names = list(runs)
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - start)
    return times


def write_models(workdir):
    """Our backbone and classifier (seeded) as transformers checkpoints and our ONNX files."""
    import keras

    import distilbert_hub as hub

    keras.utils.set_random_seed(0)
    backbone = hub.DistilBertBackbone(vocabulary_size=VOCABULARY_SIZE, **SIZE)
    classifier = hub.DistilBertTextClassifier(backbone, num_classes=2)
    for name, model in (("backbone", backbone), ("classifier", classifier)):
        model.export_to_transformers(workdir / name / "checkpoint")
        model.export(workdir / name / "ours.onnx", format="onnx")
        model.export(workdir / name / "ours.int8.onnx", format="onnx", int8=True)


def optimum_exports(workdir):
    from optimum.exporters.onnx import main_export
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    for name, (task, _) in MODELS.items():
        out = workdir / name / "optimum"
        main_export(str(workdir / name / "checkpoint"), output=str(out), task=task, device="cpu")
        quantizer = ORTQuantizer.from_pretrained(str(out), file_name="model.onnx")
        config = AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=False)
        quantizer.quantize(save_dir=str(out / "int8"), quantization_config=config)
        (workdir / name / "optimum.onnx").symlink_to(out / "model.onnx")
        (workdir / name / "optimum.int8.onnx").symlink_to(next((out / "int8").glob("*.onnx")))


def transformers_models(workdir, name, threads):
    import torch
    import transformers

    torch.set_num_threads(threads)
    cls = transformers.DistilBertModel if name == "backbone" else transformers.DistilBertForSequenceClassification
    model = cls.from_pretrained(str(workdir / name / "checkpoint"), attn_implementation="eager").eval()
    int8 = torch.ao.quantization.quantize_dynamic(
        cls.from_pretrained(str(workdir / name / "checkpoint"), attn_implementation="eager").eval(),
        {torch.nn.Linear},
        dtype=torch.qint8,
    )
    return {"float32": model, "int8": int8}


def main():
    parser = shape_arguments(__doc__.splitlines()[0], batch=8, length=128, repeats=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads of every session and torch")
    args = parser.parse_args()
    import numpy as np
    import onnxruntime
    import torch

    rng = np.random.default_rng(0)
    ids = rng.integers(1000, VOCABULARY_SIZE, (args.batch, args.length)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1::2, args.length // 2 :] = 0  # half the rows padded to half length
    feeds = {"input_ids": ids, "attention_mask": mask}
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        print("writing the checkpoints and our exports ...", file=sys.stderr, flush=True)
        write_models(workdir)
        print("optimum's exports ...", file=sys.stderr, flush=True)
        optimum_exports(workdir)
        for name, (_, output) in MODELS.items():
            eager = transformers_models(workdir, name, args.threads)
            with torch.inference_mode():
                outputs = {
                    precision: model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
                    for precision, model in eager.items()
                }
            reference = getattr(outputs["float32"], output).numpy()
            real = mask.astype(bool) if output == "last_hidden_state" else slice(None)
            for precision in ("float32", "int8"):
                row = {"model": name, "precision": precision}
                row["transformers_diff"] = float(
                    np.abs(getattr(outputs[precision], output).numpy() - reference)[real].max()
                )
                suffix = ".int8.onnx" if precision == "int8" else ".onnx"
                model = eager[precision]
                runs = {
                    "transformers": lambda model=model: model(
                        input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)
                    )
                }
                for side in ("ours", "optimum"):
                    session = onnxruntime.InferenceSession(
                        str(workdir / name / f"{side}{suffix}"), options, providers=["CPUExecutionProvider"]
                    )
                    got = session.run([output], feeds)[0]
                    row[f"{side}_diff"] = float(np.abs(got - reference)[real].max())
                    runs[side] = lambda session=session, output=output: session.run([output], feeds)
                with torch.inference_mode():
                    times = race(runs, args.repeats)
                row |= {f"{side}_s": min(seconds) for side, seconds in times.items()}
                # The same round's times side by side: the ratio a load spike
                # in one round moves least.
                ratios = sorted(o / u for o, u in zip(times["optimum"], times["ours"]))
                row["ours_vs_optimum_rounds"] = {
                    "median": statistics.median(ratios),
                    "min": ratios[0],
                    "max": ratios[-1],
                }
                results.append(row)
                print(row, file=sys.stderr, flush=True)

    cpu = cpu_description()
    lines = [
        f"CPU: {cpu['model']} ({cpu['isa']}; flags {', '.join(cpu['flags'])}), {args.threads} threads",
        f"DistilBERT-base (seeded weights), batch {args.batch} x {args.length} tokens (half the rows half padding); "
        f"fastest of {args.repeats}; per round: the median [min-max] of optimum's time / ours in the same round; "
        "diff: max abs difference from transformers float32 on real tokens",
        "",
        "| model | precision | ours (ORT) | optimum (ORT) | transformers eager | ours vs optimum "
        "| per round | ours vs transformers | diff ours | diff optimum | diff transformers |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rounds = r["ours_vs_optimum_rounds"]
        lines.append(
            f"| {r['model']} | {r['precision']} | {r['ours_s'] * 1e3:.1f} ms | {r['optimum_s'] * 1e3:.1f} ms "
            f"| {r['transformers_s'] * 1e3:.1f} ms | {r['optimum_s'] / r['ours_s']:.2f}x "
            f"| {rounds['median']:.2f}x [{rounds['min']:.2f}-{rounds['max']:.2f}] "
            f"| {r['transformers_s'] / r['ours_s']:.2f}x | {r['ours_diff']:.1e} | {r['optimum_diff']:.1e} "
            f"| {r['transformers_diff']:.1e} |"
        )
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_onnx.md").write_text(table + "\n", encoding="utf-8")
    record = {"cpu": cpu, "versions": versions("onnx", "onnxruntime", "optimum-onnx", "torch", "transformers", "keras")}
    (out / "bench_onnx.json").write_text(json.dumps(record | {"args": vars(args), "results": results}, indent=1))


if __name__ == "__main__":
    main()
