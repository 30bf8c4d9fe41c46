"""What users reach by name and what the heads compute in: layer and input
names (KerasHub's where KerasHub has the task, since `get_layer(...)`, LoRA
targets and quantization maps use them), every head layer following the
backbone's dtype policy, and the classifier's output activation."""

import keras
import numpy as np
import pytest

from harness.testing import MODELS, model_inputs, tiny_backbone_for

HEAD_LAYER_NAMES = {
    # KerasHub's DistilBertTextClassifier: pooled_dense, output_dropout, logits.
    "text_classifier": {"pooled_dense", "output_dropout", "logits"},
    "masked_lm": {"mlm_head"},
    "token_classifier": {"output_dropout", "logits"},
    "question_answerer": {"output_dropout", "qa_logits"},
    "multiple_choice": {
        "flatten_token_ids",
        "flatten_padding_mask",
        "pooled_dense",
        "output_dropout",
        "choice_score",
        "logits",
    },
}


@pytest.mark.parametrize("name", sorted(HEAD_LAYER_NAMES))
def test_head_layers_and_inputs_have_their_names(name, tiny_tokenizer):
    model = MODELS[name](tiny_backbone_for(tiny_tokenizer))
    own = {
        layer.name
        for layer in model.layers
        if layer is not model.backbone and not isinstance(layer, keras.layers.InputLayer)
    }
    assert own == HEAD_LAYER_NAMES[name]
    assert sorted(i.name for i in keras.tree.flatten(model.input)) == sorted(model_inputs(name, 10))


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "float16"])
@pytest.mark.parametrize("name", sorted(HEAD_LAYER_NAMES))
def test_every_head_layer_follows_the_backbones_policy(name, policy, tiny_tokenizer):
    model = MODELS[name](tiny_backbone_for(tiny_tokenizer, dtype=policy))
    for layer in model._flatten_layers(include_self=False):
        if not isinstance(layer, keras.layers.InputLayer):
            assert layer.dtype_policy.name == policy, f"{layer.path}: {layer.dtype_policy.name}"
    outputs = keras.tree.flatten(model(model_inputs(name, tiny_tokenizer.vocabulary_size())))
    compute = keras.dtype_policies.get(policy).compute_dtype
    assert {keras.backend.standardize_dtype(o.dtype) for o in outputs} == {compute}


def test_the_classifier_applies_its_output_activation(tiny_tokenizer):
    import distilbert_hub as hub

    backbone = tiny_backbone_for(tiny_tokenizer)
    classifier = hub.DistilBertTextClassifier(backbone, num_classes=3, activation="softmax")
    probabilities = keras.ops.convert_to_numpy(classifier(model_inputs("text_classifier", 10)))
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-6)
    assert (probabilities > 0).all()
