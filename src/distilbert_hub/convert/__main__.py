"""Convert DistilBERT checkpoints in either direction.

    python -m distilbert_hub.convert SOURCE OUTPUT [--to preset|transformers] [--verify]

SOURCE is a preset name, `hf://org/name`, a Hugging Face checkpoint directory
or a Keras preset directory; the model class (backbone or task) follows its
`architectures` or `task.json`. `--to preset` (default) writes a Keras preset,
`--to transformers` a directory `transformers` loads. `--verify` (needs
transformers and torch, and a jax or torch Keras backend) runs the converted
and the original model on a fixed set of texts, prints the max abs error on
real tokens per output, and exits 1 above `--atol`.
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
    model = auto.from_pretrained(directory, attn_implementation="eager").eval()
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
    import distilbert_hub as hub
    from distilbert_hub.task import Task

    backbone = model if isinstance(model, hub.DistilBertBackbone) else model.backbone
    architecture = "DistilBertModel" if not isinstance(model, Task) else model.hf_architecture
    tokenizer = hub.DistilBertTokenizer.from_preset(str(hf_directory))
    length = min(32, backbone.max_sequence_length)
    inputs = hub.DistilBertTextClassifierPreprocessor(tokenizer, sequence_length=length)(VERIFY_TEXTS)
    if architecture == "DistilBertForMultipleChoice":
        inputs = {k: v[None] for k, v in inputs.items()}
    expected = hf_outputs(hf_directory, architecture, inputs)
    if architecture == "DistilBertForMaskedLM":  # logits at every position, as transformers gives them
        # Padding slots point at [CLS] (a real token); they are left out of the comparison below.
        positions = np.where(inputs["padding_mask"] == 1, np.arange(length, dtype=np.int32), 0)
        inputs = inputs | {"mask_positions": positions.astype(np.int32)}
    ours = model(inputs, training=False)
    ours = ours if isinstance(ours, dict) else {next(iter(expected)): ours}
    worst = 0.0
    for name, value in expected.items():
        actual = keras.ops.convert_to_numpy(ours[name])
        error = np.abs(actual.astype(np.float64) - value)
        if error.ndim >= 2 and error.shape[-2 if error.ndim == 3 else -1] == inputs["padding_mask"].shape[-1]:
            mask = inputs["padding_mask"]
            error = error * (mask[..., None] if error.ndim == 3 else mask)
        worst = max(worst, float(error.max()))
        print(f"  {name}: max abs error on real tokens {error.max():.3e} (tolerance {atol:g})")
    return worst <= atol


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
    parser.add_argument("--to", choices=("preset", "transformers"), default="preset")
    parser.add_argument("--verify", action="store_true")
    parser.add_argument(
        "--atol",
        type=float,
        default=1e-4,
        help="--verify tolerance (float32 at full size differs by ~1e-5 between frameworks)",
    )
    args = parser.parse_args(argv)

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
        else:
            model.export_to_transformers(args.output)
    except (ValueError, FileExistsError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.verify:
        hf_directory = Path(args.output) if args.to == "transformers" else directory
        if preset_format(hf_directory)[0] != "hf":
            print("error: --verify needs a Hugging Face checkpoint on one side.", file=sys.stderr)
            return 2
        print(f"verifying against transformers ({hf_directory})", flush=True)
        if not verify(model, hf_directory, args.atol):
            print("FAILED: outputs differ beyond the tolerance", file=sys.stderr)
            return 1
        print("verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
