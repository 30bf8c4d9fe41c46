"""What each task promises besides its numerics: every constructor argument
survives `get_config`/`from_config` at a value that is not its default,
`compile()` gives the documented metrics, bad labels are refused with the
task's name in the message, and `answer()` keeps transformers' pipeline
defaults and prints nothing."""

import keras
import numpy as np
import pytest

import distilbert_hub as hub
from harness.testing import MODELS, model_inputs, tiny_backbone_for

# Every constructor argument at a value that is not its default.
NON_DEFAULT_ARGUMENTS = {
    "text_classifier": (
        hub.DistilBertTextClassifier,
        {"num_classes": 3, "activation": "softmax", "hidden_dim": 6, "dropout": 0.35},
    ),
    "token_classifier": (hub.DistilBertTokenClassifier, {"num_classes": 5, "dropout": 0.35}),
    "question_answerer": (hub.DistilBertQuestionAnswerer, {"dropout": 0.35}),
    "multiple_choice": (hub.DistilBertMultipleChoice, {"dropout": 0.35}),
}


@pytest.mark.parametrize("name", sorted(NON_DEFAULT_ARGUMENTS))
def test_every_constructor_argument_survives_the_config_round_trip(name, tiny_tokenizer):
    cls, arguments = NON_DEFAULT_ARGUMENTS[name]
    model = cls(tiny_backbone_for(tiny_tokenizer), **arguments)
    restored = cls.from_config(model.get_config())
    for argument, value in arguments.items():
        assert getattr(restored, argument) == value, f"{cls.__name__}.{argument}: {getattr(restored, argument)!r}"
    assert restored.get_config() == model.get_config()
    rates = {layer.rate for layer in restored._flatten_layers() if isinstance(layer, keras.layers.Dropout)}
    assert arguments["dropout"] in rates


def test_the_classifier_config_keeps_its_output_activation(tiny_tokenizer):
    model = hub.DistilBertTextClassifier(tiny_backbone_for(tiny_tokenizer), num_classes=3, activation="softmax")
    restored = hub.DistilBertTextClassifier.from_config(model.get_config())
    restored.set_weights(model.get_weights())
    probabilities = keras.ops.convert_to_numpy(restored(model_inputs("text_classifier", 10)))
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-6)


@pytest.mark.parametrize("name", ["text_classifier", "token_classifier", "multiple_choice"])
def test_compile_defaults_report_accuracy(name, tiny_tokenizer):
    model = MODELS[name](tiny_backbone_for(tiny_tokenizer))
    model.compile()
    x = model_inputs(name, tiny_tokenizer.vocabulary_size())
    shape = keras.ops.shape(model(x))[:-1]
    result = model.evaluate(x, np.zeros(shape, "int32"), verbose=0, return_dict=True)
    assert "sparse_categorical_accuracy" in result, sorted(result)


def bad_labels(name, x):
    if name == "question_answerer":
        length = x["token_ids"].shape[-1]
        return {"start_logits": np.array([0, length]), "end_logits": np.array([1, length])}
    if name == "masked_lm":
        return np.full(x["mask_positions"].shape, 50)
    if name == "multiple_choice":
        return np.array([0, 2])
    return np.full(x["token_ids"].shape[: 2 if name == "token_classifier" else 1], 7)


@pytest.mark.parametrize(
    "name", ["text_classifier", "token_classifier", "question_answerer", "multiple_choice", "masked_lm"]
)
def test_labels_out_of_range_are_refused_in_the_tasks_name(name, tiny_tokenizer):
    model = MODELS[name](tiny_backbone_for(tiny_tokenizer))
    model.compile()
    x = model_inputs(name, tiny_tokenizer.vocabulary_size())
    with pytest.raises(ValueError, match=rf"^{type(model).__name__}\b.*label \d+ at index"):
        model.evaluate(x, bad_labels(name, x), verbose=0)


def test_class_label_checks_follow_the_number_of_classes(tiny_tokenizer):
    backbone = tiny_backbone_for(tiny_tokenizer)
    x = model_inputs("text_classifier", tiny_tokenizer.vocabulary_size())
    binary = hub.DistilBertTextClassifier(backbone, num_classes=2)
    binary.compile()
    with pytest.raises(ValueError, match=r"label 2 at index \(1,\)"):
        binary.evaluate(x, np.array([1, 2]), verbose=0)
    regression = hub.DistilBertTextClassifier(backbone, num_classes=1)
    regression.compile()
    assert np.isfinite(regression.evaluate(x, np.array([0.25, 1.5], "float32"), verbose=0))
    assert hub.DistilBertTokenClassifier(backbone, num_classes=2).num_classes == 2


def test_question_answerer_labels_are_a_start_end_dict_with_start_at_most_end(tiny_tokenizer):
    model = MODELS["question_answerer"](tiny_backbone_for(tiny_tokenizer))
    model.compile()
    x = model_inputs("question_answerer", tiny_tokenizer.vocabulary_size())
    with pytest.raises(ValueError, match="labels are {'start_logits'"):
        model.evaluate(x, {"start": np.array([1, 2]), "end": np.array([1, 2])}, verbose=0)
    with pytest.raises(ValueError, match="row 1 has start 3 after end 2"):
        model.evaluate(x, {"start_logits": np.array([1, 3]), "end_logits": np.array([1, 2])}, verbose=0)
    one_token_answers = {"start_logits": np.array([1, 2]), "end_logits": np.array([1, 2])}
    assert np.isfinite(model.evaluate(x, one_token_answers, verbose=0)).all()


def test_answer_keeps_the_pipelines_default_span_limit_and_prints_nothing(tiny_tokenizer, monkeypatch, capsys):
    # transformers' question-answering pipeline: max_answer_len=15 by default.
    preprocessor = hub.DistilBertQuestionAnswererPreprocessor(tiny_tokenizer, sequence_length=32, stride=4)
    model = hub.DistilBertQuestionAnswerer(tiny_backbone_for(tiny_tokenizer, max_sequence_length=32), preprocessor)
    question, context = "who ?", " ".join(tiny_tokenizer.get_vocabulary()[5:25])
    windows = preprocessor.windows([question], [context])
    first = int(np.flatnonzero(windows.model_inputs()["token_ids"][0] == tiny_tokenizer.sep_token_id)[0]) + 1
    start, end = np.zeros((1, 32), "float32"), np.zeros((1, 32), "float32")
    start[0, first], end[0, first + 15], end[0, first + 14] = 10.0, 10.0, 9.0  # a 16-token span scores best
    monkeypatch.setattr(model, "predict_on_batch", lambda x: {"start_logits": start, "end_logits": end})
    words = context.split()
    assert model.answer([question], [context], doc_stride=4)["answer"] == " ".join(words[:15])
    assert model.answer([question], [context], doc_stride=4, max_answer_len=16)["answer"] == " ".join(words[:16])

    monkeypatch.undo()
    model.answer([question], [context], doc_stride=4)
    assert capsys.readouterr().out == ""


def test_mask_positions_outside_the_sequence_are_refused_in_the_tasks_name(tiny_tokenizer):
    model = MODELS["masked_lm"](tiny_backbone_for(tiny_tokenizer))
    x = model_inputs("masked_lm", tiny_tokenizer.vocabulary_size())
    x["mask_positions"][1, 0] = x["token_ids"].shape[-1]
    with pytest.raises(ValueError, match=r"^DistilBertMaskedLM: mask position 7 at index \(1, 0\) is outside"):
        model.predict(x, verbose=0)
