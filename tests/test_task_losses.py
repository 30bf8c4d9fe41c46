"""Each task's default loss is transformers' loss on the same logits and
labels (written out in numpy: mean softmax cross-entropy; the question
answerer averages its start and end losses), and the head's dropout comes
from the HF config field transformers reads for that head."""

import keras
import numpy as np
import pytest

import distilbert_hub as hub
from distilbert_hub.convert.hf_config import head_kwargs_from_hf_config
from harness.testing import MODELS, model_inputs, tiny_backbone_for


def cross_entropy(logits, labels, weights=None):
    logits = logits - logits.max(-1, keepdims=True)
    log_probabilities = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = -np.take_along_axis(log_probabilities, labels[..., None], -1)[..., 0]
    if weights is None:
        return picked.mean()
    return (picked * weights).sum() / weights.sum()  # transformers: the mean over labels that are not -100


def labels_for(name, outputs, rng):
    if name == "question_answerer":
        return {key: rng.integers(0, 5, 2) for key in ("start_logits", "end_logits")}
    return rng.integers(0, outputs.shape[-1], outputs.shape[:-1])


@pytest.mark.parametrize("name", ["text_classifier", "token_classifier", "question_answerer", "multiple_choice"])
def test_the_default_loss_is_transformers_cross_entropy(name, tiny_tokenizer):
    keras.utils.set_random_seed(0)
    model = MODELS[name](tiny_backbone_for(tiny_tokenizer, dropout=0.0))
    model.compile()
    x = model_inputs(name, tiny_tokenizer.vocabulary_size())
    outputs = keras.tree.map_structure(keras.ops.convert_to_numpy, model(x))
    y = labels_for(
        name, outputs if not isinstance(outputs, dict) else outputs["start_logits"], np.random.default_rng(1)
    )
    if name == "question_answerer":
        expected = np.mean([cross_entropy(outputs[key].astype(np.float64), y[key]) for key in y])
    else:
        expected = cross_entropy(outputs.astype(np.float64), y)
    loss = model.evaluate(x, y, verbose=0, return_dict=True)["loss"]
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_the_masked_lm_loss_is_cross_entropy_at_the_masked_positions(tiny_tokenizer):
    keras.utils.set_random_seed(0)
    model = MODELS["masked_lm"](tiny_backbone_for(tiny_tokenizer, dropout=0.0))
    model.compile()
    x = model_inputs("masked_lm", tiny_tokenizer.vocabulary_size())
    logits = keras.ops.convert_to_numpy(model(x)).astype(np.float64)
    labels, weights = np.array([[7, 8], [9, 10]]), np.array([[1.0, 1.0], [1.0, 0.0]])
    result = model.evaluate(x, labels, sample_weight=weights, verbose=0, return_dict=True)
    np.testing.assert_allclose(result["loss"], cross_entropy(logits, labels, weights), rtol=1e-5)
    agreement = (logits.argmax(-1) == labels)[weights > 0].mean()
    np.testing.assert_allclose(result["sparse_categorical_accuracy"], agreement)


@pytest.mark.parametrize(
    "cls, field",
    [
        (hub.DistilBertTextClassifier, "seq_classif_dropout"),
        (hub.DistilBertMultipleChoice, "seq_classif_dropout"),
        (hub.DistilBertQuestionAnswerer, "qa_dropout"),
        (hub.DistilBertTokenClassifier, "dropout"),
    ],
)
def test_the_head_dropout_comes_from_the_field_transformers_reads(cls, field):
    # transformers' modeling_distilbert: the sequence and multiple-choice heads
    # use seq_classif_dropout, question answering qa_dropout, token
    # classification dropout.
    config = {"dropout": 0.1, "seq_classif_dropout": 0.2, "qa_dropout": 0.3, "id2label": {"0": "A", "1": "B"}}
    assert head_kwargs_from_hf_config(cls, config)["dropout"] == config[field]
    # A config.json without the field (older writers) keeps the head's default.
    assert "dropout" not in head_kwargs_from_hf_config(cls, {k: v for k, v in config.items() if k != field})
