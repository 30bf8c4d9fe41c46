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


def test_masked_lm_head_variables_carry_transformers_module_names(tiny_tokenizer):
    # DistilBertForMaskedLM: vocab_transform, vocab_layer_norm, vocab_projector (tied; its own bias).
    model = MODELS["masked_lm"](tiny_backbone_for(tiny_tokenizer, activation="relu"))
    paths = {variable.path for variable in model.masked_lm_head.weights}
    assert paths == {
        "mlm_head/vocab_transform/kernel",
        "mlm_head/vocab_transform/bias",
        "mlm_head/vocab_layer_norm/gamma",
        "mlm_head/vocab_layer_norm/beta",
        "mlm_head/vocab_bias",
    }, sorted(paths)
    assert model.masked_lm_head.activation == "relu", "the head's activation is the backbone's (HF `activation`)"
    assert keras.backend.standardize_dtype(model.input["mask_positions"].dtype) == "int32"


@pytest.mark.parametrize("name", sorted(HEAD_LAYER_NAMES))
def test_fresh_weights_follow_transformers_init(name, tiny_tokenizer):
    """`DistilBertPreTrainedModel._init_weights`: Linear and Embedding weights
    N(0, initializer_range=0.02), the heads' included (KerasHub's heads too),
    biases zero, LayerNorm gains one. Keras truncates at 2 std, which leaves
    a standard deviation of 0.0176."""
    keras.utils.set_random_seed(0)
    model = MODELS[name](tiny_backbone_for(tiny_tokenizer, hidden_dim=32, intermediate_dim=64))
    wrong, leaves = [], set()
    for variable in model.weights:
        value = keras.ops.convert_to_numpy(variable)
        leaf = variable.path.rsplit("/", 1)[-1]
        leaves.add(leaf)
        drawn = leaf in ("kernel", "token_embedding", "position_embedding")
        if drawn and np.abs(value).max() > 0.04:
            wrong.append(f"{variable.path}: |value| up to {np.abs(value).max():.3f}, beyond 2 std")
        elif drawn and value.size >= 256 and not 0.014 < value.std() < 0.021:
            wrong.append(f"{variable.path}: std {value.std():.4f}")
        elif leaf in ("bias", "beta", "vocab_bias") and np.any(value != 0):
            wrong.append(f"{variable.path}: not zeros")
        elif leaf == "gamma" and np.any(value != 1):
            wrong.append(f"{variable.path}: not ones")
    assert {"kernel", "token_embedding", "position_embedding", "gamma"} <= leaves, sorted(leaves)
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_layer_norm_has_distilberts_epsilon(name, tiny_tokenizer):
    """transformers' DistilBERT normalizes with eps=1e-12 everywhere (the MLM
    head's `vocab_layer_norm` too). The goldens see 1e-5 (the sensitivity
    meta-tests), but not Keras' 1e-7 fallback for `epsilon=None`, which moves
    outputs at unit variance by less than the parity tolerance."""
    backbone = tiny_backbone_for(tiny_tokenizer)
    model = MODELS[name](backbone)
    norms = {
        layer.path: layer.epsilon
        for layer in model._flatten_layers()
        if isinstance(layer, keras.layers.LayerNormalization)
    }
    assert len(norms) == 1 + 2 * backbone.num_layers + (name == "masked_lm"), sorted(norms)
    assert all(epsilon == 1e-12 for epsilon in norms.values()), norms
