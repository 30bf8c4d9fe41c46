"""Backbone forward on a GPU (a script, not a test; never part of CI).

In one run, each side in its own process, at DistilBERT-base size, batch x
length (default 64 x 512), with the same seeded weights (written once by our
`export_to_transformers`):
  * the GPU's bf16 matmul peak (torch, an FFN-shaped matmul), TFLOP/s;
  * transformers with SDPA attention, bfloat16 and float32;
  * ours on torch (the model called eagerly under `torch.no_grad`) and on jax
    (`stateless_call` under `jax.jit`), bfloat16 and float32;
  * each as a ratio to transformers at the same dtype and as a fraction of the
    matmul peak, and the worst per-token cosine of our last hidden state
    against transformers' float32 one.

Writes reports/bench_gpu.json and .md with the device name.
"""

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import run_json_child, shape_arguments, versions, worst_cosine
from forward import SIZE, forward_gflop

# Every child prints one JSON line last. `best` is the fastest of `repeats`
# timed runs after warm-up (compilation, autotuning).
CHILD = r"""
import json, os, sys, time
import numpy as np
kind, dtype, batch, length, repeats, workdir = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6]), sys.argv[6]
SIZE = json.loads(sys.argv[7])
DEVICE = os.environ.get("BENCH_DEVICE", "cuda")  # "cpu": a dry run of this script
rng = np.random.default_rng(0)
ids = rng.integers(1000, 30000, (batch, length)).astype("int32")
mask = np.ones((batch, length), "int32")
mask[batch // 2:, length * 3 // 4:] = 0  # half the rows padded: the mask path runs
checkpoint = os.path.join(workdir, "checkpoint")
def best(run, sync, warmup=3):
    for _ in range(warmup):
        sync(run())
    times = []
    for _ in range(repeats):
        start = time.perf_counter(); sync(run()); times.append(time.perf_counter() - start)
    return min(times)
result = {}
if kind == "export":
    os.environ["KERAS_BACKEND"] = "torch"
    import keras, distilbert_hub as hub
    keras.utils.set_random_seed(0)
    hub.DistilBertBackbone(vocabulary_size=30522, **SIZE).export_to_transformers(checkpoint)
elif kind == "matmul":
    import torch
    a = torch.randn(batch * length, 768, device=DEVICE, dtype=torch.bfloat16)
    b = torch.randn(768, 3072, device=DEVICE, dtype=torch.bfloat16)
    seconds = best(lambda: torch.matmul(a, b), lambda _: DEVICE == "cpu" or torch.cuda.synchronize())
    result["tflops"] = 2 * batch * length * 768 * 3072 / seconds / 1e12
    result["device"] = torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu"
elif kind == "transformers":
    import torch, transformers
    # `dtype` is transformers 5's name for 4.x's `torch_dtype`.
    dtype_argument = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
    model = transformers.AutoModel.from_pretrained(
        checkpoint, attn_implementation="sdpa", **{dtype_argument: getattr(torch, dtype)}).to(DEVICE).eval()
    x = dict(input_ids=torch.from_numpy(ids).long().to(DEVICE), attention_mask=torch.from_numpy(mask).long().to(DEVICE))
    with torch.inference_mode():
        run = lambda: model(**x).last_hidden_state
        result["forward_s"] = best(run, lambda _: DEVICE == "cpu" or torch.cuda.synchronize())
        np.save(os.path.join(workdir, f"hidden_transformers_{dtype}.npy"), run().float().cpu().numpy())
else:
    os.environ["KERAS_BACKEND"] = kind
    import keras, distilbert_hub as hub
    backbone = hub.DistilBertBackbone.from_preset(checkpoint, dtype=dtype)
    if kind == "torch":
        import torch
        x = {"token_ids": torch.from_numpy(ids).to(DEVICE), "padding_mask": torch.from_numpy(mask).to(DEVICE)}
        with torch.no_grad():
            run = lambda: backbone(x, training=False)
            result["forward_s"] = best(run, lambda _: DEVICE == "cpu" or torch.cuda.synchronize())
            hidden = run().float().cpu().numpy()
    else:
        import jax
        x = {"token_ids": jax.device_put(ids), "padding_mask": jax.device_put(mask)}
        groups = (backbone.trainable_variables, backbone.non_trainable_variables)
        variables = [[v.value for v in group] for group in groups]
        forward = jax.jit(lambda trainable, frozen, x: backbone.stateless_call(trainable, frozen, x)[0])
        run = lambda: forward(*variables, x)
        result["forward_s"] = best(run, lambda out: out.block_until_ready())
        hidden = np.asarray(run().astype("float32"))
    result["device"] = str(keras.ops.convert_to_tensor(ids).device) if kind == "torch" else str(jax.devices()[0])
    np.save(os.path.join(workdir, f"hidden_{kind}_{dtype}.npy"), hidden)
print(json.dumps(result))
"""


def run_child(kind, dtype, args, workdir):
    return run_json_child(CHILD, kind, dtype, args.batch, args.length, args.repeats, workdir, json.dumps(SIZE))


def main():
    parser = shape_arguments(__doc__.splitlines()[0], batch=64, length=512, repeats=10)
    args = parser.parse_args()

    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        exported = run_child("export", "float32", args, workdir)
        if "error" in exported:
            raise SystemExit(f"could not write the shared checkpoint: {exported['error']}")
        for kind, dtype in [("matmul", "bfloat16")] + [
            (kind, dtype) for dtype in ("bfloat16", "float32") for kind in ("transformers", "torch", "jax")
        ]:
            print(f"measuring {kind} {dtype} ...", file=sys.stderr, flush=True)
            results[f"{kind}:{dtype}"] = run_child(kind, dtype, args, workdir)
        reference_path = Path(workdir, "hidden_transformers_float32.npy")
        mask = np.ones((args.batch, args.length), bool)
        mask[args.batch // 2 :, args.length * 3 // 4 :] = False
        for key, result in results.items():
            path = Path(workdir, f"hidden_{key.replace(':', '_')}.npy")
            if path.is_file() and reference_path.is_file():
                result["worst_cosine"] = worst_cosine(np.load(path), np.load(reference_path), mask)

    gflop, peak = forward_gflop(args.batch, args.length), results["matmul:bfloat16"].get("tflops")
    device = results["matmul:bfloat16"].get("device", "?")
    lines = [
        f"GPU: {device}",
        f"matmul peak (torch bfloat16, {args.batch * args.length}x768 @ 768x3072): {peak:.0f} TFLOP/s",
        f"forward: DistilBERT-base, batch {args.batch} x {args.length} tokens (half the rows a quarter padding), "
        f"{gflop / 1000:.2f} TFLOP",
        "",
        "| model | dtype | forward | vs transformers | TFLOP/s | of bf16 matmul peak | worst cosine vs float32 |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, r in results.items():
        kind, dtype = key.split(":")
        if kind == "matmul":
            continue
        if "error" in r:
            lines.append(f"| {kind} | {dtype} | not run: {r['error']} | | | | |")
            continue
        base = results[f"transformers:{dtype}"].get("forward_s")
        speed = gflop / 1000 / r["forward_s"]
        lines.append(
            f"| {kind} | {dtype} | {r['forward_s'] * 1000:.1f} ms | {base / r['forward_s'] if base else 0:.2f}x "
            f"| {speed:.0f} | {speed / peak:.0%} | {r.get('worst_cosine', float('nan')):.5f} |"
        )
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_gpu.md").write_text(table + "\n", encoding="utf-8")
    record = {"device": device, "versions": versions("keras", "jax", "torch", "transformers")}
    (out / "bench_gpu.json").write_text(json.dumps(record | {"args": vars(args), "results": results}, indent=1))


if __name__ == "__main__":
    main()
