"""Keras quantization on the backbone and every task: int8 stays near the
float32 transformers goldens, every mode survives a `.keras` archive reloaded
in a fresh process, and LoRA trains on an int8 backbone (QLoRA)."""

import keras
import numpy as np
import pytest

import distilbert_hub as hub
from harness.precision import QUANTIZATION_MODES, failures, measure
from harness.testing import MODELS, assert_reloads_in_a_fresh_process, model_inputs, tiny_backbone_for

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


def test_every_mode_and_task_reloads_quantized_in_a_fresh_process(tiny_tokenizer, tmp_path):
    """Every mode on the backbone, int8 on every task (one fresh process for all)."""
    models = []
    for mode in QUANTIZATION_MODES:
        for name, make_model in MODELS.items() if mode == "int8" else [("backbone", MODELS["backbone"])]:
            keras.utils.set_random_seed(0)
            model = make_model(tiny_backbone_for(tiny_tokenizer, dropout=0.0))
            model.quantize(mode)
            quantized = {layer.path for layer in model._flatten_layers() if layer.quantization_mode == mode}
            assert any(path.endswith("attention/query") for path in quantized), f"{name} {mode}: nothing quantized"
            models.append((f"{mode}_{name}", model, model_inputs(name, tiny_tokenizer.vocabulary_size())))
    assert_reloads_in_a_fresh_process(models, tmp_path)


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


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="the integer GEMM path exists only on torch's CPU")
def test_int8_inference_on_torch_uses_the_integer_gemm_with_identical_outputs(tiny_tokenizer, monkeypatch):
    """`predict` (no gradients) takes `torch._int_mm`; a call that records
    gradients takes Keras' own int8 path. Both accumulate in int32 and scale
    alike: the outputs agree to float32 rounding. With LoRA on, Keras' path runs (its update
    is not in the integer GEMM)."""
    import torch

    keras.utils.set_random_seed(0)
    backbone = tiny_backbone_for(tiny_tokenizer, dropout=0.0)
    backbone.quantize("int8")
    rng = np.random.default_rng(0)
    for layer in backbone._flatten_layers():
        if isinstance(layer, keras.layers.Dense):  # biases start at zero: make them count
            layer.bias.assign(rng.normal(0, 0.5, layer.bias.shape).astype("float32"))
    x = model_inputs("backbone", tiny_tokenizer.vocabulary_size())
    calls = []
    int_mm = torch._int_mm
    monkeypatch.setattr(torch, "_int_mm", lambda *args: calls.append(1) or int_mm(*args))

    def both_paths():
        calls.clear()
        fast = backbone.predict_on_batch(x)
        used = len(calls)
        with torch.enable_grad():
            reference = keras.ops.convert_to_numpy(backbone(x))
        return fast, used, reference

    fast, used, reference = both_paths()
    assert used == 6 * backbone.num_layers, f"{used} integer GEMMs for {backbone.num_layers} blocks"
    # The same int32 products; the float scaling may round an ulp apart.
    np.testing.assert_allclose(fast, reference, rtol=0, atol=1e-6)

    backbone.enable_lora(2)
    for layer in backbone._flatten_layers():
        if getattr(layer, "lora_enabled", False):
            layer.lora_kernel_b.assign(rng.normal(0, 0.5, layer.lora_kernel_b.shape).astype("float32"))
    fast, used, reference = both_paths()
    assert used == 4 * backbone.num_layers, f"{used} integer GEMMs with LoRA on query and value"
    np.testing.assert_allclose(fast, reference, rtol=0, atol=1e-6)
