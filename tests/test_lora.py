"""LoRA as KerasHub offers it: only the low-rank updates (and task heads) train."""

import keras
import numpy as np
import pytest

import distilbert_hub as hub
from distilbert_hub.layers.initializers import skip_weight_initialization
from harness.testing import draw_head_at_glorot_scale, tiny_backbone_for


def trainable_count(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def test_a_full_size_backbone_at_rank_4_trains_exactly_the_query_and_value_updates():
    with skip_weight_initialization():
        backbone = hub.DistilBertBackbone(
            vocabulary_size=30522, num_layers=6, num_heads=12, hidden_dim=768, intermediate_dim=3072
        )
    backbone.enable_lora(4)
    assert trainable_count(backbone) == 6 * 2 * (768 * 4 + 4 * 768) == 73_728


def test_lora_changes_nothing_until_trained_and_its_weights_round_trip(tiny_tokenizer, token_inputs, tmp_path):
    keras.utils.set_random_seed(0)
    backbone = tiny_backbone_for(tiny_tokenizer)
    inputs = {k: np.minimum(v, tiny_tokenizer.vocabulary_size() - 1) for k, v in token_inputs.items()}
    before = keras.ops.convert_to_numpy(backbone(inputs))
    backbone.enable_lora(2, target_names=("query", "value", "intermediate"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(backbone(inputs)), before, atol=1e-6)
    for layer in backbone.lora_layers():
        layer.lora_kernel_b.assign(np.full(layer.lora_kernel_b.shape, 0.05, "float32"))
    changed = keras.ops.convert_to_numpy(backbone(inputs))
    assert np.abs(changed - before).max() > 1e-3
    backbone.save_lora_weights(tmp_path / "lora.h5")

    keras.utils.set_random_seed(0)
    other = tiny_backbone_for(tiny_tokenizer)  # the same seed: the same base weights
    other.enable_lora(2, target_names=("query", "value", "intermediate"))
    other.load_lora_weights(tmp_path / "lora.h5")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(other(inputs)), changed, atol=1e-6)
    with pytest.raises(ValueError, match="no Dense layer named \\['q'\\]"):
        other.enable_lora(2, target_names=("q",))


def test_a_classifier_fine_tunes_with_lora_and_the_loss_goes_down(tiny_tokenizer):
    keras.utils.set_random_seed(0)
    preprocessor = hub.DistilBertTextClassifierPreprocessor(tiny_tokenizer, sequence_length=8)
    classifier = hub.DistilBertTextClassifier(
        tiny_backbone_for(tiny_tokenizer, dropout=0.0), num_classes=2, preprocessor=preprocessor, dropout=0.0
    )
    draw_head_at_glorot_scale(classifier)
    classifier.enable_lora(2)
    head = sum(
        int(np.prod(v.shape)) for layer in (classifier.pooled_dense, classifier.output_dense) for v in layer.weights
    )
    assert trainable_count(classifier) == head + 2 * 2 * (8 * 2 + 2 * 8)
    classifier.compile(optimizer=keras.optimizers.Adam(1e-2))
    texts, labels = ["a good movie", "a great book", "a bad movie", "a terrible book"], np.array([1, 1, 0, 0])
    history = classifier.fit(texts, labels, epochs=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_merging_lora_gives_a_plain_model_with_the_same_outputs(tiny_tokenizer, token_inputs, tmp_path):
    keras.utils.set_random_seed(0)
    preprocessor = hub.DistilBertTextClassifierPreprocessor(tiny_tokenizer, sequence_length=8)
    classifier = hub.DistilBertTextClassifier(
        tiny_backbone_for(tiny_tokenizer), num_classes=3, preprocessor=preprocessor
    )
    plain_count = trainable_count(classifier)
    classifier.enable_lora(2, target_names=("query", "value", "output"))
    for layer in classifier.backbone.lora_layers():
        layer.lora_kernel_b.assign(np.random.default_rng(1).normal(0, 0.1, layer.lora_kernel_b.shape))
    inputs = {k: np.minimum(v, tiny_tokenizer.vocabulary_size() - 1) for k, v in token_inputs.items()}
    with_lora = keras.ops.convert_to_numpy(classifier.predict(inputs, verbose=0))

    classifier.merge_lora_weights()
    assert classifier.backbone.lora_layers() == []
    assert trainable_count(classifier) == plain_count
    assert not any("lora" in v.path for v in classifier.weights)
    np.testing.assert_allclose(classifier.predict(inputs, verbose=0), with_lora, atol=1e-5)
    classifier.save(tmp_path / "merged.keras")
    reloaded = keras.saving.load_model(tmp_path / "merged.keras")
    np.testing.assert_allclose(reloaded.predict(inputs, verbose=0), with_lora, atol=1e-5)
    with pytest.raises(ValueError, match="no LoRA weights to merge"):
        classifier.merge_lora_weights()


def test_rank_must_be_a_positive_integer_and_one_is_enough(tiny_tokenizer):
    backbone = tiny_backbone_for(tiny_tokenizer)
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="rank must be a positive integer"):
            backbone.enable_lora(bad)
    backbone.enable_lora(1)
    assert {layer.lora_rank for layer in backbone.lora_layers()} == {1}
    assert trainable_count(backbone) == 2 * 2 * (8 * 1 + 1 * 8)
