"""Convert DistilBERT checkpoints in either direction.

    python -m distilbert_hub.convert SOURCE OUTPUT [--to preset|transformers|onnx] [--int8] [--verify]

SOURCE is a preset name, `hf://org/name`, a Hugging Face checkpoint directory
or a Keras preset directory; the model class (backbone or task) follows its
`architectures` or `task.json`. `--to preset` (default) writes a Keras preset,
`--to transformers` a directory `transformers` loads, `--to onnx` one ONNX
file (`export(format="onnx")`; `--int8` quantizes it). `--verify` (needs
transformers and torch, and a jax or torch Keras backend) runs the converted
and the original model on a fixed set of texts, prints the max abs error on
real tokens per output, and exits 1 above `--atol`. For `--to onnx` it runs
the file in ONNX Runtime against transformers on the source checkpoint, or,
where the source is a Keras preset or transformers cannot run, against the
Keras model loaded from the source.
"""

import argparse
import contextlib
import sys
from pathlib import Path

import numpy as np

VERIFY_TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "DistilBERT is a small, fast, cheap and light Transformer model.",
    "Hello World, Café! 東京 naïve résumé",
    "short",
]


def model_class(directory):
    """The class a preset or checkpoint directory holds."""
    import distilbert_hub as hub
    from distilbert_hub.convert.hf_checkpoint import read_json
    from distilbert_hub.convert.preset import TASK_CONFIG, hf_architecture, preset_format
    from distilbert_hub.task import Task

    kind, config = preset_format(directory)
    if kind == "hf":
        architecture = hf_architecture(config, directory)
        return hub.DistilBertBackbone if architecture == "DistilBertModel" else Task.registry[architecture]
    if (directory / TASK_CONFIG).is_file():
        name = read_json(directory / TASK_CONFIG)["class_name"]
        for cls in Task.registry.values():
            if cls.__name__ == name:
                return cls
        raise SystemExit(f"{directory / TASK_CONFIG}: unknown task class {name!r}.")
    return hub.DistilBertBackbone


def hf_outputs(directory, architecture, inputs):
    import torch
    import transformers

    auto = getattr(transformers, architecture)
    # float32 whatever the checkpoint stores: ours loads bf16 weights as exact float32 values.
    model = auto.from_pretrained(directory, attn_implementation="eager", dtype=torch.float32).eval()
    with torch.no_grad():
        result = model(
            input_ids=torch.from_numpy(inputs["token_ids"]).long(),
            attention_mask=torch.from_numpy(inputs["padding_mask"]).long(),
        )
    if architecture == "DistilBertModel":
        return {"last_hidden_state": result.last_hidden_state.numpy()}
    if architecture == "DistilBertForQuestionAnswering":
        return {"start_logits": result.start_logits.numpy(), "end_logits": result.end_logits.numpy()}
    return {"logits": result.logits.numpy()}


def verify(model, hf_directory, atol):
    import keras

    if keras.backend.backend() == "tensorflow":
        raise SystemExit(
            "--verify needs KERAS_BACKEND=jax or torch: TensorFlow and transformers' torch cannot share a process."
        )
    from distilbert_hub.task import Task

    architecture = "DistilBertModel" if not isinstance(model, Task) else model.hf_architecture
    inputs = verify_inputs(model, hf_directory)
    expected = hf_outputs(hf_directory, architecture, inputs)
    return within_tolerance(keras_outputs(model, inputs), expected, inputs["padding_mask"], atol)


def verify_inputs(model, directory):
    """The fixed texts through the source's tokenizer, as verify() feeds them."""
    import distilbert_hub as hub

    backbone = model if isinstance(model, hub.DistilBertBackbone) else model.backbone
    tokenizer = hub.DistilBertTokenizer.from_preset(str(directory))
    length = min(32, backbone.max_sequence_length)
    inputs = hub.DistilBertTextClassifierPreprocessor(tokenizer, sequence_length=length)(VERIFY_TEXTS)
    if isinstance(model, hub.DistilBertMultipleChoice):
        inputs = {k: v[None] for k, v in inputs.items()}
    return inputs


def keras_outputs(model, inputs):
    """The Keras model's outputs under transformers' names (the masked LM's
    logits at every position; padding slots point at [CLS] and are masked
    out of the comparison)."""
    import keras

    import distilbert_hub as hub

    if isinstance(model, hub.DistilBertMaskedLM):
        length = inputs["padding_mask"].shape[-1]
        positions = np.where(inputs["padding_mask"] == 1, np.arange(length, dtype=np.int32), 0)
        inputs = inputs | {"mask_positions": positions.astype(np.int32)}
    outputs = model(inputs, training=False)
    if not isinstance(outputs, dict):
        outputs = {"last_hidden_state" if isinstance(model, hub.DistilBertBackbone) else "logits": outputs}
    return {name: keras.ops.convert_to_numpy(value) for name, value in outputs.items()}


def within_tolerance(actual, expected, padding_mask, atol):
    """Prints each output's max abs error over real tokens (NaN counts as
    infinite); True when every one is within `atol`."""
    worst = 0.0
    for name, value in expected.items():
        error = np.abs(np.asarray(actual[name], np.float64) - value)
        error = np.where(np.isnan(error), np.inf, error)
        if error.shape[: padding_mask.ndim] == padding_mask.shape:
            error = error[padding_mask == 1]
        worst = max(worst, float(error.max()))
        print(f"  {name}: max abs error on real tokens {error.max():.3e} (tolerance {atol:g})")
    return worst <= atol


def verify_onnx(model, onnx_path, directory, atol):
    """ONNX Runtime on the export against the source model, computed apart:
    transformers where the source is a Hugging Face checkpoint and
    transformers can run here, otherwise the Keras model."""
    import keras

    from distilbert_hub.convert.preset import preset_format
    from distilbert_hub.export import run_onnx
    from distilbert_hub.task import Task

    inputs = verify_inputs(model, directory)
    reference = "the Keras model"
    if preset_format(directory)[0] == "hf" and keras.backend.backend() != "tensorflow":
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
        except ImportError:
            pass
        else:
            reference = "transformers"
    print(f"verifying {onnx_path} in ONNX Runtime against {reference} ({directory})", flush=True)
    if reference == "transformers":
        architecture = model.hf_architecture if isinstance(model, Task) else "DistilBertModel"
        expected = hf_outputs(directory, architecture, inputs)
    else:
        expected = keras_outputs(model, inputs)
    actual = run_onnx(onnx_path, inputs["token_ids"], inputs["padding_mask"])
    return within_tolerance(actual, expected, inputs["padding_mask"], atol)


@contextlib.contextmanager
def weight_progress_bar():
    """A Keras progress bar over the weights being assigned."""
    import keras

    from distilbert_hub.convert.hf_weights import ASSIGN_PROGRESS

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
        default=None,
        help="--verify tolerance, default 1e-4 (float32 at full size differs by ~1e-5 between frameworks); "
        "--int8 --verify needs it given",
    )
    args = parser.parse_args(argv)
    if args.int8 and args.to != "onnx":
        parser.error("--int8 is for --to onnx.")
    if args.int8 and args.verify and args.atol is None:
        parser.error("--int8 --verify needs an --atol: int8 outputs are not within float32's 1e-4.")
    atol = 1e-4 if args.atol is None else args.atol

    from distilbert_hub.convert.preset import preset_format
    from distilbert_hub.convert.sources import resolve

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
    if args.verify and args.to == "onnx":
        if not verify_onnx(model, args.output, directory, atol):
            print("FAILED: outputs differ beyond the tolerance", file=sys.stderr)
            return 1
        print("verified")
    elif args.verify:
        hf_directory = Path(args.output) if args.to == "transformers" else directory
        if preset_format(hf_directory)[0] != "hf":
            print("error: --verify needs a Hugging Face checkpoint on one side.", file=sys.stderr)
            return 2
        print(f"verifying against transformers ({hf_directory})", flush=True)
        if not verify(model, hf_directory, atol):
            print("FAILED: outputs differ beyond the tolerance", file=sys.stderr)
            return 1
        print("verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
