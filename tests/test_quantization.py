"""Keras quantization on the backbone and every task: int8 stays near the
float32 transformers goldens, every mode survives a `.keras` archive reloaded
in a fresh process, and LoRA trains on an int8 backbone (QLoRA)."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import distilbert_hub as hub
from harness.golden import REPO_ROOT
from harness.precision import QUANTIZATION_MODES, failures, measure
from harness.testing import tiny_backbone_for

INT8_CASES = (
    "backbone_deep_padded",
    "head_masked_lm",
    "head_text_classifier",
    "head_token_classifier",
    "head_question_answerer",
    "head_multiple_choice",
)


@pytest.mark.parametrize("case_id", INT8_CASES)
def test_int8_stays_within_its_cosine_bar(case_id):
    results = measure(case_id, "float32", quantize="int8")
    assert all(r.policy == "int8_from_float32" for r in results)
    problems = failures(results)
    assert not problems, "\n".join(problems)


MODELS = {
    "backbone": lambda backbone: backbone,
    "text_classifier": lambda backbone: hub.DistilBertTextClassifier(backbone, num_classes=3, dropout=0.0),
    "masked_lm": hub.DistilBertMaskedLM,
    "token_classifier": lambda backbone: hub.DistilBertTokenClassifier(backbone, num_classes=4),
    "question_answerer": hub.DistilBertQuestionAnswerer,
    "multiple_choice": lambda backbone: hub.DistilBertMultipleChoice(backbone, dropout=0.0),
}


def model_inputs(name, vocabulary_size):
    rng = np.random.default_rng(0)
    x = {
        "token_ids": rng.integers(5, vocabulary_size, (2, 7)).astype("int32"),
        "padding_mask": np.ones((2, 7), "int32"),
    }
    x["padding_mask"][1, 5:] = 0
    if name == "masked_lm":
        x["mask_positions"] = np.array([[1, 2], [3, 4]], "int32")
    if name == "multiple_choice":
        x = {k: np.stack([v, v[::-1]], axis=1) for k, v in x.items()}
    return x


RELOAD_SCRIPT = """
import json, sys
import keras, numpy as np
import distilbert_hub  # registers the classes
cases = json.loads(sys.argv[1])
for archive, inputs, output in cases:
    model = keras.saving.load_model(archive)
    x = {k: np.asarray(v) for k, v in np.load(inputs).items()}
    y = model(x)
    y = y if isinstance(y, dict) else {"output": y}
    np.savez(output, **{k: keras.ops.convert_to_numpy(v) for k, v in y.items()})
"""


def test_every_mode_and_task_reloads_quantized_in_a_fresh_process(tiny_tokenizer, tmp_path):
    """Every mode on the backbone, int8 on every task (one fresh process for all)."""
    cases, expected = [], {}
    for mode in QUANTIZATION_MODES:
        for name, make_model in MODELS.items() if mode == "int8" else [("backbone", MODELS["backbone"])]:
            keras.utils.set_random_seed(0)
            model = make_model(tiny_backbone_for(tiny_tokenizer, dropout=0.0))
            x = model_inputs(name, tiny_tokenizer.vocabulary_size())
            model.quantize(mode)
            quantized = {layer.path for layer in model._flatten_layers() if layer.quantization_mode == mode}
            assert any(path.endswith("attention/query") for path in quantized), f"{name} {mode}: nothing quantized"
            y = model(x)
            y = y if isinstance(y, dict) else {"output": y}
            stem = tmp_path / f"{mode}_{name}"
            model.save(f"{stem}.keras")
            np.savez(f"{stem}_inputs.npz", **x)
            cases.append((f"{stem}.keras", f"{stem}_inputs.npz", f"{stem}_outputs.npz"))
            expected[f"{stem}_outputs.npz"] = {k: keras.ops.convert_to_numpy(v) for k, v in y.items()}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run(
        [sys.executable, "-c", RELOAD_SCRIPT, json.dumps(cases)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for output, values in expected.items():
        reloaded = np.load(output)
        for key, value in values.items():
            np.testing.assert_allclose(reloaded[key], value, atol=1e-6, err_msg=f"{output} '{key}' after reload")


def test_lora_trains_on_an_int8_backbone(tiny_tokenizer):
    keras.utils.set_random_seed(0)
    preprocessor = hub.DistilBertTextClassifierPreprocessor(tiny_tokenizer, sequence_length=8)
    classifier = hub.DistilBertTextClassifier(
        tiny_backbone_for(tiny_tokenizer, dropout=0.0), num_classes=2, preprocessor=preprocessor, dropout=0.0
    )
    classifier.backbone.quantize("int8")
    classifier.enable_lora(2)
    trainable = {v.path for v in classifier.trainable_weights}
    assert trainable and all("lora_kernel" in p or p.startswith(("pooled_dense", "logits")) for p in trainable), sorted(
        trainable
    )
    classifier.compile(optimizer=keras.optimizers.Adam(1e-2))
    texts, labels = ["a good movie", "a great book", "a bad movie", "a terrible book"], np.array([1, 1, 0, 0])
    history = classifier.fit(texts, labels, epochs=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
