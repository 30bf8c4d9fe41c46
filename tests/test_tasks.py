"""Clear errors from the task models and preprocessors (each task's own
behaviour is tested in tests/tasks/, with the shared TaskTestCase)."""

import numpy as np
import pytest

import distilbert_hub as hub

TEXTS = ["the quick brown fox", "a cat sat on the mat", "good movie", "terrible book"]
LABELS = np.array([0, 1, 2, 1])


def preprocessors(tokenizer):
    return {
        "text_classifier": hub.DistilBertTextClassifierPreprocessor(tokenizer, sequence_length=10),
        "masked_lm": hub.DistilBertMaskedLMPreprocessor(
            tokenizer, sequence_length=10, mask_selection_rate=0.5, mask_selection_length=4, seed=1
        ),
        "token_classifier": hub.DistilBertTokenClassifierPreprocessor(tokenizer, sequence_length=10),
        "question_answerer": hub.DistilBertQuestionAnswererPreprocessor(tokenizer, sequence_length=14, stride=3),
        "multiple_choice": hub.DistilBertMultipleChoicePreprocessor(tokenizer, sequence_length=10),
    }


def make_task(name, backbone, preprocessor=None):
    if name == "text_classifier":
        return hub.DistilBertTextClassifier(backbone, num_classes=3, preprocessor=preprocessor)
    if name == "token_classifier":
        return hub.DistilBertTokenClassifier(backbone, num_classes=4, preprocessor=preprocessor)
    return {
        "masked_lm": hub.DistilBertMaskedLM,
        "question_answerer": hub.DistilBertQuestionAnswerer,
        "multiple_choice": hub.DistilBertMultipleChoice,
    }[name](backbone, preprocessor=preprocessor)


def raw_data(name):
    """(x, y) of raw strings for each task."""
    if name == "text_classifier":
        return TEXTS, LABELS
    if name == "masked_lm":
        return TEXTS, None
    if name == "token_classifier":
        words = [t.split() for t in TEXTS]
        return words, [[i % 4 for i in range(len(w))] for w in words]
    if name == "question_answerer":
        contexts = ["jane written the book in paris", "the cat sat on the mat in london city big"]
        return (["who written it ?", "where sat the cat ?"], contexts), [(0, 4), (19, 25)]
    return (["the cat sat on", "a dog"], [["the mat", "a city", "blue"], ["good", "bad", "lazy dog"]]), [0, 2]


TASKS = ["text_classifier", "masked_lm", "token_classifier", "question_answerer", "multiple_choice"]


class TestTaskErrors:
    def test_labels_out_of_range(self, tiny_backbone, tiny_tokenizer):
        model = make_task("text_classifier", tiny_backbone, preprocessors(tiny_tokenizer)["text_classifier"])
        model.compile()
        with pytest.raises(ValueError, match=r"label 3 at index \(1,\) is outside \[0, num_classes=3\)"):
            model.fit(TEXTS[:2], np.array([0, 3]), verbose=0)

    @pytest.mark.parametrize("num_classes", [0, -1, 2.5])
    def test_bad_num_classes(self, tiny_backbone, num_classes):
        with pytest.raises(ValueError, match="num_classes must be"):
            hub.DistilBertTextClassifier(tiny_backbone, num_classes=num_classes)
        with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
            hub.DistilBertTokenClassifier(tiny_backbone, num_classes=1)

    def test_pairs_of_unequal_batch_sizes(self, tiny_tokenizer):
        preprocessor = hub.DistilBertTextClassifierPreprocessor(tiny_tokenizer, sequence_length=8)
        with pytest.raises(ValueError, match="equal batch sizes; got 2 first and 1 second"):
            preprocessor((["a cat", "a dog"], ["the mat"]))

    def test_mask_positions_outside_the_sequence(self, tiny_backbone):
        model = hub.DistilBertMaskedLM(tiny_backbone)
        inputs = {
            "token_ids": np.ones((1, 5), "int32"),
            "padding_mask": np.ones((1, 5), "int32"),
            "mask_positions": np.array([[1, 5]], "int32"),
        }
        with pytest.raises(ValueError, match=r"mask position 5 at index \(0, 1\) is outside the sequence \[0, 5\)"):
            model(inputs)

    def test_question_without_room_for_context(self, tiny_tokenizer):
        preprocessor = hub.DistilBertQuestionAnswererPreprocessor(tiny_tokenizer, sequence_length=6, stride=1)
        with pytest.raises(ValueError, match="row 0: the question leaves 0 tokens for the context in 6"):
            preprocessor.windows(["the quick brown fox jumps over"], ["a cat"])

    def test_answer_outside_context(self, tiny_tokenizer):
        preprocessor = hub.DistilBertQuestionAnswererPreprocessor(tiny_tokenizer, sequence_length=12, stride=2)
        with pytest.raises(ValueError, match=r"answer 0: span \(3, 40\) is not inside its context"):
            preprocessor((["who ?"], ["a cat sat"]), [(3, 40)])

    @pytest.mark.parametrize(
        "kwargs, message",
        [
            ({"mask_selection_rate": 1.5}, "mask_selection_rate must be in"),
            ({"mask_token_rate": 0.8, "random_token_rate": 0.3}, "must be <= 1"),
            ({"truncate": "middle"}, "truncate='middle' is not one of"),
            ({"sequence_length": 2}, "sequence_length must be an integer >= 3"),
        ],
    )
    def test_bad_preprocessor_settings(self, tiny_tokenizer, kwargs, message):
        with pytest.raises(ValueError, match=message):
            hub.DistilBertMaskedLMPreprocessor(tiny_tokenizer, **kwargs)

    def test_infeasible_only_first(self, tiny_tokenizer):
        preprocessor = hub.DistilBertTextClassifierPreprocessor(
            tiny_tokenizer, sequence_length=6, truncate="only_first"
        )
        with pytest.raises(ValueError, match="row 0: truncate='only_first' cannot fit"):
            preprocessor((["a cat"], ["the quick brown fox jumps"]))
