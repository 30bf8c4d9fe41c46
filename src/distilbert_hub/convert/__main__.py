"""Convert DistilBERT checkpoints in either direction, or export them to ONNX.

    python -m distilbert_hub.convert SOURCE OUTPUT [--to preset|transformers|onnx] [--int8] [--verify]

SOURCE is a preset name, `hf://org/name`, a Hugging Face checkpoint directory
or a Keras preset directory; the model class (backbone or task) follows its
`architectures` or `task.json`. `--to preset` (default) writes a Keras preset,
`--to transformers` a directory `transformers` loads, `--to onnx` one ONNX
file (`export(format="onnx")`; `--int8` quantizes it with ONNX Runtime).
`--verify` loads the written OUTPUT afresh and runs it and the SOURCE, each in
its own implementation (transformers, in a child process so that any Keras
backend works, for a Hugging Face directory; this library for a preset; ONNX
Runtime for an ONNX file), on a fixed set of texts; it prints the max abs
error on real tokens per output and exits 1 above `--atol` or on any NaN.
For `--to onnx` from a Hugging Face directory where transformers is not
installed, the source runs in this library instead.
"""

import argparse
import contextlib
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np

import distilbert_hub as hub
from distilbert_hub.convert.hf_checkpoint import is_checkpoint_file, read_json
from distilbert_hub.convert.hf_heads import HEADS, TASK_NAMES, architecture_of
from distilbert_hub.convert.hf_weights import ASSIGN_PROGRESS
from distilbert_hub.convert.loaders import hf_architecture, preset_format
from distilbert_hub.convert.preset import TASK_CONFIG
from distilbert_hub.convert.sources import resolve
from distilbert_hub.export import run_onnx

VERIFY_TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "DistilBERT is a small, fast, cheap and light Transformer model.",
    "Hello World, Café! 東京 naïve résumé",
    "short",
]


def model_class(directory):
    """The class a preset or checkpoint directory holds."""
    kind, config = preset_format(directory)
    if kind == "hf":
        return getattr(hub, TASK_NAMES.get(hf_architecture(config, directory), "DistilBertBackbone"))
    if is_checkpoint_file(directory, TASK_CONFIG):
        name = read_json(TASK_CONFIG, "task config", directory).get("class_name")
        if name in HEADS and HEADS[name].weights:
            return getattr(hub, name)
        raise SystemExit(f"{directory / TASK_CONFIG}: unknown task class {name!r:.80}.")
    return hub.DistilBertBackbone


# Run by a child interpreter: transformers never shares a process with the Keras backend (tensorflow
# beside transformers' torch aborts, and so can jax once something has imported tensorflow).
HF_CHILD = """
import sys, numpy as np, torch, transformers
directory, architecture, io = sys.argv[1:4]
inputs = np.load(io + "/inputs.npz")
# float32 whatever the checkpoint stores: this library widens bf16 weights to float32 exactly.
model = getattr(transformers, architecture).from_pretrained(directory, attn_implementation="eager", dtype=torch.float32)
model.eval()
with torch.no_grad():
    result = model(input_ids=torch.from_numpy(inputs["token_ids"]).long(),
                   attention_mask=torch.from_numpy(inputs["padding_mask"]).long())
names = {"DistilBertModel": ["last_hidden_state"], "DistilBertForQuestionAnswering": ["start_logits", "end_logits"]}
np.savez(io + "/outputs.npz", **{n: getattr(result, n).numpy() for n in names.get(architecture, ["logits"])})
"""


def hf_outputs(directory, architecture, inputs):
    """transformers' outputs for `inputs` from the checkpoint `directory`, computed in a child process."""
    with tempfile.TemporaryDirectory(prefix="verify-") as io:
        np.savez(Path(io) / "inputs.npz", **inputs)
        env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
        run = subprocess.run(
            [sys.executable, "-c", HF_CHILD, str(directory), architecture, io], capture_output=True, text=True, env=env
        )
        if run.returncode != 0:
            raise SystemExit(f"--verify: transformers could not run {directory}:\n{run.stderr[-2000:]}")
        with np.load(Path(io) / "outputs.npz") as outputs:
            return dict(outputs)


def our_outputs(cls, directory, architecture, inputs):
    """This library's outputs for `inputs` from a preset `directory`, loaded afresh from disk."""
    options = {} if cls.__name__ == "DistilBertBackbone" else {"preprocessor": None}
    model = cls.from_preset(str(directory), **options)
    if architecture == "DistilBertForMaskedLM":  # logits at every position, as transformers gives them
        # Padding slots point at [CLS] (a real token); they are left out of the comparison.
        length = inputs["token_ids"].shape[-1]
        positions = np.where(inputs["padding_mask"] == 1, np.arange(length, dtype=np.int32), 0)
        inputs = inputs | {"mask_positions": positions.astype(np.int32)}
    result = model(inputs, training=False)
    if not isinstance(result, dict):
        name = {"DistilBertModel": "last_hidden_state"}.get(architecture, "logits")
        result = {name: result}
    return {name: keras.ops.convert_to_numpy(value) for name, value in result.items()}


def outputs_of(cls, directory, inputs, by_transformers):
    """What `directory` computes: by transformers (an HF checkpoint) or by this library."""
    if by_transformers:
        return hf_outputs(directory, architecture_of(cls), inputs)
    return our_outputs(cls, directory, architecture_of(cls), inputs)


def verify_inputs(cls, source, output):
    """The fixed texts through the source's tokenizer (the Hugging Face side's where there is one)."""
    hf_side = output if preset_format(source)[0] != "hf" and preset_format(output)[0] == "hf" else source
    tokenizer = hub.DistilBertTokenizer.from_preset(str(hf_side))
    length = min(32, hub.DistilBertBackbone.from_preset(str(source), load_weights=False).max_sequence_length)
    inputs = hub.DistilBertTextClassifierPreprocessor(tokenizer, sequence_length=length)(VERIFY_TEXTS)
    inputs = {k: np.asarray(v) for k, v in inputs.items()}
    if cls is hub.DistilBertMultipleChoice:
        inputs = {k: v[None] for k, v in inputs.items()}
    return inputs


def within_tolerance(actual, expected, padding_mask, atol):
    """Prints each output's max abs error over real tokens; True when all are present, finite and within `atol`."""
    ok = True
    for name, value in expected.items():
        if name not in actual or np.shape(actual[name]) != np.shape(value):
            print(f"  {name}: missing or of another shape in the converted model")
            ok = False
            continue
        finite = bool(np.all(np.isfinite(value)) and np.all(np.isfinite(actual[name])))
        error = np.abs(np.asarray(actual[name], np.float64) - value)
        if error.shape[: padding_mask.ndim] == padding_mask.shape:
            error = error[padding_mask == 1]
        worst = float(np.nanmax(error)) if finite else float("nan")
        suffix = "" if finite else " NaN/inf"
        print(f"  {name}: max abs error on real tokens {worst:.3e} (tolerance {atol:g}){suffix}")
        ok = ok and finite and worst <= atol
    return ok


def verify(cls, source, output, atol):
    """The converted model (`output`) against the source, each loaded afresh by its own implementation (never
    our in-memory copy). NaN or infinity anywhere fails."""
    inputs = verify_inputs(cls, source, output)
    expected = outputs_of(cls, source, inputs, preset_format(source)[0] == "hf")
    actual = outputs_of(cls, output, inputs, preset_format(output)[0] == "hf")
    return within_tolerance(actual, expected, inputs["padding_mask"], atol)


def verify_onnx(cls, source, onnx_path, atol):
    """ONNX Runtime on the exported file against the source model computed apart: by transformers for a
    Hugging Face checkpoint where it is installed, otherwise by this library."""
    inputs = verify_inputs(cls, source, source)
    installed = all(importlib.util.find_spec(name) is not None for name in ("torch", "transformers"))
    by_transformers = preset_format(source)[0] == "hf" and installed
    reference = "transformers" if by_transformers else "this library's model"
    print(f"verifying {onnx_path} in ONNX Runtime against {reference} ({source})", flush=True)
    expected = outputs_of(cls, source, inputs, by_transformers)
    actual = run_onnx(onnx_path, inputs["token_ids"], inputs["padding_mask"])
    return within_tolerance(actual, expected, inputs["padding_mask"], atol)


@contextlib.contextmanager
def weight_progress_bar():
    """A Keras progress bar over the weights being assigned."""
    bars = {}

    def report(done, total):
        bars.setdefault("bar", keras.utils.Progbar(total, unit_name="weight")).update(done)

    token = ASSIGN_PROGRESS.set(report)
    try:
        yield
    finally:
        ASSIGN_PROGRESS.reset(token)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m distilbert_hub.convert",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source")
    parser.add_argument("output")
    parser.add_argument("--to", choices=("preset", "transformers", "onnx"), default="preset")
    parser.add_argument("--int8", action="store_true", help="--to onnx: ONNX Runtime's dynamic int8 quantization")
    parser.add_argument("--verify", action="store_true")
    parser.add_argument(
        "--atol",
        type=float,
        help="--verify tolerance, default 1e-4 (float32 at full size differs by ~1e-5 between frameworks); "
        "--int8 --verify needs it given",
    )
    args = parser.parse_args(argv)
    if args.int8 and args.to != "onnx":
        parser.error("--int8 is for --to onnx.")
    if args.int8 and args.verify and args.atol is None:
        parser.error("--int8 --verify needs an --atol: int8 outputs are not within float32's 1e-4.")
    atol = 1e-4 if args.atol is None else args.atol

    try:
        directory = resolve(args.source)
        cls = model_class(directory)
        print(f"loading {cls.__name__} from {directory}", flush=True)
        with weight_progress_bar():
            model = cls.from_preset(str(directory))
        print(f"writing {args.to} to {args.output}", flush=True)
        if args.to == "preset":
            model.save_to_preset(args.output)
        elif args.to == "onnx":
            model.export(args.output, format="onnx", int8=args.int8)
        else:
            model.export_to_transformers(args.output)
    except (ValueError, FileExistsError, FileNotFoundError, TypeError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not args.verify:
        return 0
    if args.to == "onnx":
        ok = verify_onnx(cls, directory, args.output, atol)
    else:
        output = Path(args.output)
        if preset_format(directory)[0] != "hf" and preset_format(output)[0] != "hf":
            print("error: --verify needs a Hugging Face checkpoint on one side.", file=sys.stderr)
            return 2
        print(f"verifying {output} against the source {directory}", flush=True)
        ok = verify(cls, directory, output, atol)
    if not ok:
        print("FAILED: outputs differ beyond the tolerance (or are not finite)", file=sys.stderr)
        return 1
    print("verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
