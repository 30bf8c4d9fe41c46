"""`DistilBertQuestionAnswerer.answer`: the pipeline's result shapes, its
arguments over several windows, and bad arguments. Equality with transformers
4.x's live question-answering pipeline: tests/crosscheck/
test_question_answering_vs_transformers4.py (tox -e crosscheck-qa)."""

import keras
import numpy as np
import pytest

import distilbert_hub as hub
from harness.testing import tiny_backbone_for

QUESTION = "who sat ?"
# Long enough for several windows of 16 tokens.
CONTEXT = "the cat sat on the mat in london . jane written the book in paris . the dog was big"


@pytest.fixture
def model(tiny_tokenizer):
    keras.utils.set_random_seed(1)
    preprocessor = hub.DistilBertQuestionAnswererPreprocessor(tiny_tokenizer, sequence_length=16, stride=4)
    return hub.DistilBertQuestionAnswerer(tiny_backbone_for(tiny_tokenizer, dropout=0.0), preprocessor)


def test_result_shapes_are_the_pipelines(model):
    one = model.answer(QUESTION, CONTEXT, doc_stride=4)
    assert set(one) == {"score", "start", "end", "answer"}
    assert CONTEXT[one["start"] : one["end"]] == one["answer"] and 0 < one["score"] <= 1
    assert model.answer([QUESTION], [CONTEXT], doc_stride=4) == one  # a list of one pair: one result, as there
    several = model.answer([QUESTION, "where ?"], CONTEXT, doc_stride=4, top_k=3)
    assert len(several) == 2 and several[0] == model.answer(QUESTION, CONTEXT, doc_stride=4, top_k=3)
    for answers in several:
        assert len(answers) == 3 and [a["score"] for a in answers] == sorted(
            (a["score"] for a in answers), reverse=True
        )
        assert len({a["answer"].lower() for a in answers}) == 3  # equal texts are merged, their scores added
        assert all(CONTEXT[a["start"] : a["end"]] == a["answer"] for a in answers)


def test_answers_come_from_every_window(model, monkeypatch):
    """A span the model scores best in the last window wins over the first's."""
    windows = model.preprocessor.windows([QUESTION], [CONTEXT], 16, 4)
    assert len(windows.encodings) > 2
    target = windows.encodings[-1].ids.index(model.preprocessor.tokenizer.sep_token_id, 1) + 2

    def logits(x):
        start, end = np.zeros(x["token_ids"].shape, "float32"), np.zeros(x["token_ids"].shape, "float32")
        last = [
            i
            for i, ids in enumerate(x["token_ids"])
            if list(ids[: len(windows.encodings[-1].ids)]) == windows.encodings[-1].ids
        ]
        start[last, target] = end[last, target] = 20.0
        return {"start_logits": start, "end_logits": end}

    monkeypatch.setattr(model, "predict_on_batch", logits)
    best = model.answer(QUESTION, CONTEXT, doc_stride=4, batch_size=2)
    begin, finish = windows.encodings[-1].offsets[target]
    assert (best["start"], best["end"], best["answer"]) == (begin, finish, CONTEXT[begin:finish])
    assert best["score"] > 0.9


def test_impossible_answer_is_offered_with_the_cls_score(model):
    def offered(**kwargs):
        answers = model.answer(QUESTION, CONTEXT, doc_stride=4, top_k=1000, **kwargs)
        return [a for a in answers if (a["start"], a["end"], a["answer"]) == (0, 0, "") and a["score"] > 0]

    assert offered() == []
    (empty,) = offered(handle_impossible_answer=True)
    assert 0 < empty["score"] < 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(top_k=0), "top_k must be an integer >= 1"),
        (dict(top_k=1.5), "top_k must be an integer >= 1"),
        (dict(max_answer_len=0), "max_answer_len must be an integer >= 1"),
        (dict(max_question_len=0), "max_question_len must be an integer >= 1"),
        (dict(max_seq_len=17), "max_seq_len=17 is more than the model's 16 positions"),
        (dict(doc_stride=16), "doc_stride=16 must be less than max_seq_len=16"),
        (dict(doc_stride=-1), "doc_stride must be an integer >= 0"),
        (dict(doc_stride=12), "leaves 10 tokens for the context in 16, not more than stride=12"),
    ],
)
def test_bad_arguments_are_named(model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        model.answer(QUESTION, CONTEXT, **kwargs)


def test_a_question_longer_than_max_question_len_is_kept_whole_as_in_the_pipeline(model):
    """transformers' fast-tokenizer path ignores max_question_len."""
    long_question = "who sat on the mat ?"
    assert model.answer(long_question, CONTEXT, doc_stride=2, max_question_len=2) == model.answer(
        long_question, CONTEXT, doc_stride=2
    )


@pytest.mark.parametrize(
    "question, context, error, message",
    [
        ("", CONTEXT, ValueError, "question 0 is empty"),
        (QUESTION, "", ValueError, "context 0 is empty"),
        ([QUESTION, QUESTION], [CONTEXT], ValueError, "2 questions but 1 contexts"),
        (QUESTION, [CONTEXT], TypeError, "context must be a string, or a list of strings beside a list of questions"),
        (3, CONTEXT, TypeError, "question must be a string or a non-empty list"),
        ([], CONTEXT, TypeError, "question must be a string or a non-empty list"),
        ([QUESTION, None], CONTEXT, TypeError, r"question\[1\] must be a string"),
    ],
)
def test_bad_inputs_are_named(model, question, context, error, message):
    with pytest.raises(error, match=message):
        model.answer(question, context, doc_stride=4)


def test_without_a_preprocessor_is_an_error(tiny_tokenizer):
    model = hub.DistilBertQuestionAnswerer(tiny_backbone_for(tiny_tokenizer))
    with pytest.raises(ValueError, match="needs a preprocessor"):
        model.answer(QUESTION, CONTEXT)
