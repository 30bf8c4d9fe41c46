"""Forward-pass and end-to-end speed (a script, not a test; `tox -e bench-forward`).

In one run, on one machine, each side in its own process:
  * the machine's float32 matmul peak (torch, an FFN-shaped matmul), GFLOP/s;
  * the backbone forward at DistilBERT-base size, batch x length (default
    8 x 128, float32): transformers eager, ours on jax, tensorflow and torch
    (`predict_on_batch`), and KerasHub on the same backend when installed;
    each as a ratio to transformers and as a fraction of the matmul peak;
  * raw text end to end on a corpus of mixed lengths: our classifier's
    `predict(texts)` (float32 and bfloat16) vs a transformers `pipeline`
    (float32) at the same batch size, with
    the same weights (written once by our `export_to_transformers`), and the
    largest logit difference between them;
  * transformers in bfloat16 (`dtype=torch.bfloat16`) and ONNX Runtime's
    dynamic int8 of our export, beside ours in bfloat16, int8 and smoothed
    int8 (`quantize("int8", calibration=...)`, its FFN output Dense in
    float32 or, `_bf16`, in bfloat16), each with
    its worst per-token cosine against transformers' float32 hidden states
    (every side loads the same weights, written once by our exporter);
  * the peak resident memory of each process (model, inputs and runs).

Writes reports/bench_forward.json and .md with the CPU model and flags.
"""

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO_ROOT, cpu_description, run_json_child, shape_arguments, versions, worst_cosine

VOCABULARY = REPO_ROOT / "harness/fixtures/bert_base_uncased_vocab.txt"
SIZE = {"num_layers": 6, "num_heads": 12, "hidden_dim": 768, "intermediate_dim": 3072}

# Every child prints one JSON line last. `best` is the fastest of `repeats`
# timed runs after warm-up (compilation): the noise on a shared machine only
# ever adds time.
CHILD = r"""
import json, os, sys, time
import numpy as np
kind, batch, length, repeats, workdir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
SIZE = dict(num_layers=6, num_heads=12, hidden_dim=768, intermediate_dim=3072)
rng = np.random.default_rng(0)
ids = rng.integers(1000, 30000, (batch, length)).astype("int32")
mask = np.ones((batch, length), "int32")
def best(run, warmup=2):
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter(); run(); times.append(time.perf_counter() - start)
    return min(times)
texts = json.load(open(os.path.join(workdir, "texts.json")))
end_to_end_batches = json.load(open(os.path.join(workdir, "end_to_end_batches.json")))
result = {"end_to_end_s": {}, "end_to_end_by_length_s": {}}
if kind == "export":
    os.environ["KERAS_BACKEND"] = "torch"
    import keras, distilbert_hub as hub
    keras.utils.set_random_seed(0)
    tokenizer = hub.DistilBertTokenizer(sys.argv[6])
    backbone = hub.DistilBertBackbone(vocabulary_size=tokenizer.vocabulary_size(), **SIZE)
    preprocessor = hub.DistilBertTextClassifierPreprocessor(tokenizer, sequence_length=length)
    hub.DistilBertTextClassifier(backbone, num_classes=2, preprocessor=preprocessor).export_to_transformers(
        os.path.join(workdir, "checkpoint"))
elif kind == "matmul":
    import torch
    flop = 2 * batch * length * 768 * 3072
    a, b = torch.randn(batch * length, 768), torch.randn(768, 3072)
    result["gflops"] = flop / best(lambda: torch.matmul(a, b), warmup=3) / 1e9
    # What the hardware offers below float32, through torch's own kernels: the
    # ceiling for any bf16 or int8 model on this CPU.
    a16, b16 = a.bfloat16(), b.bfloat16()
    result["bfloat16_gflops"] = flop / best(lambda: torch.matmul(a16, b16), warmup=3) / 1e9
    a8, b8 = torch.randint(-127, 127, a.shape, dtype=torch.int8), torch.randint(-127, 127, b.shape, dtype=torch.int8)
    result["int8_gops"] = flop / best(lambda: torch._int_mm(a8, b8), warmup=3) / 1e9
elif kind == "transformers":
    import torch, transformers
    directory = os.path.join(workdir, "checkpoint")
    model = transformers.DistilBertModel.from_pretrained(directory, attn_implementation="eager").eval()
    inputs = {"input_ids": torch.from_numpy(ids).long(), "attention_mask": torch.from_numpy(mask).long()}
    with torch.inference_mode():
        result["forward_s"] = best(lambda: model(**inputs))
        np.save(os.path.join(workdir, "hidden_transformers.npy"), model(**inputs).last_hidden_state.numpy())
        model_bf16 = transformers.DistilBertModel.from_pretrained(
            directory, attn_implementation="eager", dtype=torch.bfloat16).eval()
        result["forward_bfloat16_s"] = best(lambda: model_bf16(**inputs))
        np.save(os.path.join(workdir, "hidden_transformers_bfloat16.npy"),
                model_bf16(**inputs).last_hidden_state.float().numpy())
    classifier = transformers.pipeline(
        "text-classification", model=transformers.AutoModelForSequenceClassification.from_pretrained(directory),
        tokenizer=transformers.AutoTokenizer.from_pretrained(directory), device=-1)
    tokenizer, model = classifier.tokenizer, classifier.model
    for size in end_to_end_batches:
        run = lambda: classifier(texts, batch_size=size, truncation=True, max_length=length,
                                 function_to_apply="none", top_k=None)
        result["end_to_end_s"][size] = best(run, warmup=1)
        # The same model and tokenizer with our batching (longest first, each
        # batch padded to its longest row): what length grouping alone buys.
        def by_length():
            encoded = tokenizer(texts, truncation=True, max_length=length)["input_ids"]
            order = sorted(range(len(texts)), key=lambda i: -len(encoded[i]))
            with torch.inference_mode():
                for start in range(0, len(order), size):
                    rows = {"input_ids": [encoded[i] for i in order[start:start + size]]}
                    model(**tokenizer.pad(rows, return_tensors="pt")).logits.numpy()
        result["end_to_end_by_length_s"][size] = best(by_length, warmup=1)
    logits = [[{d["label"]: d["score"] for d in row}[f"LABEL_{i}"] for i in range(2)] for row in run()]
    np.save(os.path.join(workdir, "logits_transformers.npy"), np.array(logits, "float32"))
elif kind == "onnxruntime_int8":
    # ONNX Runtime's dynamic int8 (quantize_dynamic) of our export of the same weights.
    os.environ["KERAS_BACKEND"] = "torch"
    import onnxruntime, distilbert_hub as hub
    from distilbert_hub.export.onnx import export_onnx
    backbone = hub.DistilBertBackbone.from_preset(os.path.join(workdir, "checkpoint"))
    path = export_onnx(backbone, os.path.join(workdir, "int8.onnx"), int8=True)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {"input_ids": ids.astype("int64"), "attention_mask": mask.astype("int64")}
    result["forward_s"] = best(lambda: session.run(None, feeds))
    np.save(os.path.join(workdir, f"hidden_{kind}.npy"), session.run(None, feeds)[0])
else:
    library, backend = kind.split(":")
    os.environ["KERAS_BACKEND"] = backend
    import keras
    if library.startswith("ours"):
        import distilbert_hub as hub
        dtype = "bfloat16" if library == "ours_bfloat16" else None
        backbone = hub.DistilBertBackbone.from_preset(os.path.join(workdir, "checkpoint"), dtype=dtype)
        if library == "ours_int8":
            backbone.quantize("int8")
        elif library.startswith("ours_int8_smoothed"):
            # Calibrated on other random ids than the timed batch; the FFN output Dense stays float32 (the
            # default) or computes in bfloat16.
            other_ids = rng.integers(1000, 30000, (batch, length)).astype("int32")
            calibration = {"token_ids": other_ids, "padding_mask": mask}
            backbone.quantize("int8", calibration=calibration,
                              unquantized_dtype="bfloat16" if library.endswith("_bf16") else None)
    else:
        import keras_hub
        backbone = keras_hub.models.DistilBertBackbone(vocabulary_size=30522, num_layers=6, num_heads=12,
                                                       hidden_dim=768, intermediate_dim=3072, max_sequence_length=512)
    x = {"token_ids": ids, "padding_mask": mask}
    result["forward_s"] = best(lambda: backbone.predict_on_batch(x))
    if library.startswith("ours"):
        hidden = np.asarray(backbone.predict_on_batch(x)).astype("float32")  # bfloat16 is ml_dtypes' here
        np.save(os.path.join(workdir, f"hidden_{kind.replace(':', '_')}.npy"), hidden)
    if library in ("ours", "ours_bfloat16"):
        # An HF checkpoint stores no preprocessing length (the tokenizer's
        # model_max_length is the model's 512), so the pipeline's max_length is set here too.
        checkpoint = os.path.join(workdir, "checkpoint")
        preprocessor = hub.DistilBertTextClassifierPreprocessor.from_preset(checkpoint, sequence_length=length)
        classifier = hub.DistilBertTextClassifier.from_preset(checkpoint, preprocessor=preprocessor, dtype=dtype)
        for size in end_to_end_batches:
            run = lambda: classifier.predict(texts, batch_size=size, verbose=0)
            result["end_to_end_s"][size] = best(run, warmup=1)
        if library == "ours":  # the float32 logits against the float32 pipeline's
            np.save(os.path.join(workdir, f"logits_{backend}.npy"), np.asarray(run(), "float32"))
import resource
result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(result))
"""


def forward_gflop(batch, length):
    """Multiply-adds x 2 of one DistilBERT-base forward (projections, FFN, attention)."""
    d, ffn, layers = 768, 3072, 6
    per_layer = 2 * batch * length * (4 * d * d + 2 * d * ffn) + 2 * 2 * batch * length * length * d
    return layers * per_layer / 1e9


def corpus(count, seed=0):
    """Mixed-length English-like texts from the uncased vocabulary's whole words (5 to 120 words)."""
    import random

    rng = random.Random(seed)
    words = [w for w in VOCABULARY.read_text(encoding="utf-8").split() if w.isalpha() and len(w) > 2][2000:12000]
    return [" ".join(rng.choices(words, k=int(rng.paretovariate(1.2) * 5) % 116 + 5)) for _ in range(count)]


def run_child(kind, args, workdir, *extra):
    return run_json_child(CHILD, kind, args.batch, args.length, args.repeats, workdir, *extra)


def main():
    parser = shape_arguments(__doc__.splitlines()[0], batch=8, length=128, repeats=5)
    parser.add_argument("--texts", type=int, default=256, help="corpus size for the end-to-end run")
    parser.add_argument("--backends", default="jax,tensorflow,torch")
    parser.add_argument(
        "--libraries",
        default="ours,ours_bfloat16,ours_int8,ours_int8_smoothed,ours_int8_smoothed_bf16,keras_hub,onnxruntime_int8",
        help="rows per backend, and onnxruntime_int8 once (ours alone for a quick before/after of our float32 "
        "forward and end to end)",
    )
    parser.add_argument(
        "--end-to-end-batches", default="8,32", help="batch sizes of the end-to-end run (32: predict's default)"
    )
    args = parser.parse_args()
    backends = args.backends.split(",")
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        Path(workdir, "texts.json").write_text(json.dumps(corpus(args.texts)))
        end_to_end_batches = [int(size) for size in args.end_to_end_batches.split(",")]
        Path(workdir, "end_to_end_batches.json").write_text(json.dumps(end_to_end_batches))
        exported = run_child("export", args, workdir, str(VOCABULARY))
        if "error" in exported:
            raise SystemExit(f"could not write the shared checkpoint: {exported['error']}")
        libraries = args.libraries.split(",")
        per_backend = [lib for lib in libraries if lib != "onnxruntime_int8"]
        kinds = ["matmul", "transformers"] + [f"{lib}:{b}" for b in backends for lib in per_backend]
        for kind in kinds + [lib for lib in libraries if lib == "onnxruntime_int8"]:
            print(f"measuring {kind} ...", file=sys.stderr, flush=True)
            results[kind] = run_child(kind, args, workdir)
        reference = np.load(Path(workdir, "logits_transformers.npy"))
        for backend in backends:
            path = Path(workdir, f"logits_{backend}.npy")
            if path.is_file():
                results[f"ours:{backend}"]["max_logit_diff"] = float(np.abs(np.load(path) - reference).max())
        float32_states = np.load(Path(workdir, "hidden_transformers.npy"))
        if "forward_bfloat16_s" in results["transformers"]:
            results["transformers bfloat16"] = {
                "forward_s": results["transformers"]["forward_bfloat16_s"],
                "end_to_end_s": {},
                "end_to_end_by_length_s": {},
                "peak_rss_mib": results["transformers"]["peak_rss_mib"],
            }
        for kind, result in results.items():
            name = "transformers_bfloat16" if kind == "transformers bfloat16" else kind.replace(":", "_")
            path = Path(workdir, f"hidden_{name}.npy")
            if path.is_file():
                result["worst_cosine"] = worst_cosine(np.load(path), float32_states)

    gflop, peak = forward_gflop(args.batch, args.length), results["matmul"].get("gflops")
    base = results["transformers"]
    lines = [
        f"CPU: {cpu_description()}",
        f"matmul peak (torch float32, {args.batch * args.length}x768 @ 768x3072): {peak:.1f} GFLOP/s; "
        f"same shape in bfloat16 {results['matmul']['bfloat16_gflops']:.1f} GFLOP/s, "
        f"int8 (torch._int_mm) {results['matmul']['int8_gops']:.1f} GOP/s",
        f"forward: DistilBERT-base, float32, batch {args.batch} x {args.length} tokens, {gflop:.1f} GFLOP; "
        f"end to end: {args.texts} texts of 5-120 words, max length {args.length}",
        "",
        "| model | forward | vs transformers | GFLOP/s | of matmul peak | "
        + "".join(f"end to end, batch {size} | vs pipeline | " for size in end_to_end_batches)
        + "max logit diff | worst token cosine vs transformers float32 | peak RSS |",
        "|---|---|---|---|---|" + "---|---|" * len(end_to_end_batches) + "---|---|---|",
    ]
    blank_end_to_end = " | |" * len(end_to_end_batches)

    def end_to_end_cells(seconds):
        pipeline = base["end_to_end_s"]
        return "".join(f" {seconds[k]:.2f} s | {pipeline[k] / seconds[k]:.2f}x |" for k in map(str, end_to_end_batches))

    for kind, r in results.items():
        if kind == "matmul":
            continue
        if "error" in r:
            lines.append(f"| {kind} | not run: {r['error']} | | | |{blank_end_to_end} | | | |")
            continue
        speed = gflop / r["forward_s"]
        diff = r.get("max_logit_diff")
        e2e_cells = end_to_end_cells(r["end_to_end_s"]) if r["end_to_end_s"] else blank_end_to_end
        cosine = f"{r['worst_cosine']:.5f}" if "worst_cosine" in r else ""
        lines.append(
            f"| {kind} | {r['forward_s']:.3f} s | {base['forward_s'] / r['forward_s']:.2f}x | {speed:.1f} "
            f"| {speed / peak:.0%} |{e2e_cells} {'' if diff is None else f'{diff:.1e}'} "
            f"| {cosine} | {r['peak_rss_mib']:.0f} MiB |"
        )
        if r["end_to_end_by_length_s"]:
            lines.append(
                f"| {kind}, length-sorted batches (tokenizer + model) | | | | |"
                f"{end_to_end_cells(r['end_to_end_by_length_s'])} | | |"
            )
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_forward.md").write_text(table + "\n", encoding="utf-8")
    record = {"cpu": cpu_description(), "versions": versions("keras", "jax", "tensorflow", "torch", "transformers")}
    (out / "bench_forward.json").write_text(json.dumps(record | {"args": vars(args), "results": results}, indent=1))


if __name__ == "__main__":
    main()
