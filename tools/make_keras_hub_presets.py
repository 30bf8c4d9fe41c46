#!/usr/bin/env python
"""Write tiny KerasHub DistilBERT presets and what KerasHub computes with them.

    KERAS_BACKEND=tensorflow python tools/make_keras_hub_presets.py

Needs `keras-hub` (which brings TensorFlow and tensorflow-text), so it runs
outside the project's tox envs, in a venv of its own; the written presets are
committed under harness/fixtures/keras_hub_presets/ with `expected.npz`:
KerasHub's token ids for TEXTS and its outputs for fixed inputs. Weights are
seeded (every variable drawn, biases included) so that a mapping mistake
shows. Written with keras-hub 0.32.0 and keras 3.15.1.
"""

import shutil
from pathlib import Path

import keras
import keras_hub
import numpy as np

OUT = Path(__file__).resolve().parent.parent / "harness" / "fixtures" / "keras_hub_presets"
VOCABULARY = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "the",
    "quick",
    "brown",
    "fox",
    "##es",
    "##s",
    "a",
    "cat",
    "sat",
    "on",
    "mat",
    "dog",
    "lazy",
    "jump",
    "##ed",
    ".",
    ",",
]
TEXTS = ["the quick brown fox", "A cat sat on the mat.", "the lazy dog jumped", "foxes, cats"]
TOKEN_IDS = np.array([[2, 5, 6, 7, 8, 3, 0, 0], [2, 11, 12, 13, 14, 5, 15, 3]], np.int32)
PADDING_MASK = (TOKEN_IDS != 0).astype(np.int32)
MASK_POSITIONS = np.array([[1, 3], [2, 6]], np.int32)


def seed_weights(model, seed):
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        scale = 0.1 if len(shape) < 2 else 1.0 / np.sqrt(shape[0])
        base = 1.0 if "gamma" in variable.path or variable.path.endswith("layer_norm/gamma") else 0.0
        variable.assign(base + scale * rng.standard_normal(shape).astype("float32"))


def tiny_backbone():
    return keras_hub.models.DistilBertBackbone(
        vocabulary_size=len(VOCABULARY),
        num_layers=2,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=16,
    )


def main():
    keras.utils.set_random_seed(0)
    shutil.rmtree(OUT, ignore_errors=True)
    tokenizer = keras_hub.models.DistilBertTokenizer(vocabulary=VOCABULARY, lowercase=True)
    inputs = {"token_ids": TOKEN_IDS, "padding_mask": PADDING_MASK}

    backbone = tiny_backbone()
    classifier = keras_hub.models.DistilBertTextClassifier(
        backbone,
        num_classes=3,
        preprocessor=keras_hub.models.DistilBertTextClassifierPreprocessor(tokenizer, sequence_length=10),
    )
    seed_weights(classifier, 1)
    classifier.save_to_preset(OUT / "text_classifier")
    np.savez(
        OUT / "text_classifier" / "expected.npz",
        token_ids=np.asarray(classifier.preprocessor(TEXTS)["token_ids"]),
        logits=classifier.predict(TEXTS, verbose=0),
        backbone_output=np.asarray(backbone(inputs)),
    )

    backbone = tiny_backbone()
    masked_lm = keras_hub.models.DistilBertMaskedLM(
        backbone, preprocessor=keras_hub.models.DistilBertMaskedLMPreprocessor(tokenizer, sequence_length=10)
    )
    seed_weights(masked_lm, 2)
    masked_lm.save_to_preset(OUT / "masked_lm")
    np.savez(
        OUT / "masked_lm" / "expected.npz",
        logits=np.asarray(masked_lm(inputs | {"mask_positions": MASK_POSITIONS})),
        token_ids=TOKEN_IDS,
        padding_mask=PADDING_MASK,
        mask_positions=MASK_POSITIONS,
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
