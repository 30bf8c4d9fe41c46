"""Differential tests: `DistilBertQuestionAnswerer.answer` against the live
`QuestionAnsweringPipeline` of transformers 4.x, which transformers 5 removed
(`tox -e crosscheck-qa` pins the last 4.x release beside torch 2.13; README
"Question answering"). The model is a seeded checkpoint that transformers
writes (`save_pretrained`, with its fast tokenizer) and `from_preset` loads.
Arbitrary questions and contexts, long contexts over several windows, every
argument of the pipeline; answers (text and character offsets) exact, scores
within 1e-5, the same candidates in the same order except near ties; where
the pipeline raises, `answer` raises a ValueError naming the argument.

Texts hold no literal special token ("[CLS]", "[SEP]", ...): transformers'
tokenizer reads one as that token, ours as text (README "Question
answering")."""

import functools
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import distilbert_hub as hub
from harness import strategies
from tests.crosscheck.test_pipelines_vs_transformers import assert_same
from tools.golden_cases import pipelines

pytestmark = pytest.mark.transformers4

# Scaled so that spans are apart (seeded weights give nearly flat logits).
HEAD_SCALE = 30.0
SPECIAL_TOKENS = ("[cls]", "[sep]", "[mask]", "[pad]", "[unk]")
QUESTIONS = ["Who met Macron?", "Where is São Paulo?", "東京はどこ?", "what (again)..."]


@functools.cache
def models(tmp_root):
    """(ours via from_preset of what transformers saved, transformers 4.x's pipeline)."""
    import pathlib

    import transformers
    from transformers import DistilBertTokenizerFast, pipeline

    assert transformers.__version__.startswith("4."), f"tox -e crosscheck-qa pins 4.x; got {transformers.__version__}"
    model, _ = pipelines.seeded_model("question_answering", 11, HEAD_SCALE)
    tokenizer = DistilBertTokenizerFast(vocab_file=str(pipelines.REPO_ROOT / pipelines.VOCABULARY), do_lower_case=True)
    directory = pathlib.Path(tmp_root) / "question_answering"
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    reference = pipeline("question-answering", model=model, tokenizer=tokenizer, device="cpu")
    return hub.DistilBertQuestionAnswerer.from_preset(str(directory)), reference


def plain_texts(max_size):
    """`strategies.texts` with a token to answer from and no literal special token."""
    return strategies.texts(max_size).filter(
        lambda text: text.strip() and not any(special in text.lower() for special in SPECIAL_TOKENS)
    )


@pytest.fixture(scope="module")
def tmp_root(tmp_path_factory):
    logging.getLogger("transformers").setLevel(logging.ERROR)
    return str(tmp_path_factory.mktemp("question_answering"))


def both(tmp_root, question, context, **kwargs):
    """(ours, theirs), or both errors: where the pipeline raises, ours must raise ValueError."""
    ours, theirs = models(tmp_root)
    try:
        expected = theirs(question=question, context=context, **kwargs)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # its ValueError, or the Rust tokenizer's error or panic (a BaseException)
        with pytest.raises(ValueError):
            ours.answer(question, context, **kwargs)
        return str(error), None
    return ours.answer(question, context, **kwargs), expected


@settings(max_examples=40)
@given(
    question=st.sampled_from(QUESTIONS) | plain_texts(20),
    context=plain_texts(60),
    repeat=st.integers(1, 4),
    max_seq_len=st.integers(16, 64),
    doc_stride=st.integers(0, 12),
    top_k=st.integers(1, 4),
    max_answer_len=st.integers(1, 8),
    impossible=st.booleans(),
)
def test_answers_match_the_pipeline(
    tmp_root, question, context, repeat, max_seq_len, doc_stride, top_k, max_answer_len, impossible
):
    """Long contexts (`repeat` copies) overflow into windows of `max_seq_len`."""
    kwargs = dict(
        max_seq_len=max_seq_len,
        doc_stride=doc_stride,
        top_k=top_k,
        max_answer_len=max_answer_len,
        handle_impossible_answer=impossible,
    )
    ours, theirs = both(tmp_root, question, " ".join([context] * repeat), **kwargs)
    if theirs is not None:
        assert_same(ours, theirs)


@settings(max_examples=10)
@given(
    contexts=st.lists(plain_texts(60), min_size=1, max_size=3),
    top_k=st.integers(1, 3),
)
def test_lists_of_questions_match_the_pipeline(tmp_root, contexts, top_k):
    """A list of questions with one context each, and with one shared
    context; a list of one pair gives one result, as the pipeline does."""
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(len(contexts))]
    ours, theirs = both(tmp_root, questions, contexts, top_k=top_k, max_seq_len=48, doc_stride=8)
    assert theirs is not None, ours
    assert_same(ours, theirs)
    ours, theirs = both(tmp_root, questions, contexts[0], top_k=top_k, max_seq_len=48, doc_stride=8)
    assert_same(ours, theirs)


def test_defaults_and_a_long_question_match_the_pipeline(tmp_root):
    """The pipeline's defaults (doc_stride min(max_seq_len // 2, 128),
    max_answer_len 15), and `max_question_len`, which its fast-tokenizer path
    does not apply: a question longer than it is answered whole."""
    context = " ".join(pipelines.TEXTS * 3)
    ours, theirs = both(tmp_root, QUESTIONS[0], context, max_seq_len=64)
    assert_same(ours, theirs)
    long_question = " ".join(QUESTIONS * 2)
    ours, theirs = both(tmp_root, long_question, context, max_seq_len=64, doc_stride=4, max_question_len=5)
    assert theirs is not None and theirs == models(tmp_root)[1](
        question=long_question, context=context, max_seq_len=64, doc_stride=4
    )
    assert_same(ours, theirs)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(top_k=0),
        dict(max_answer_len=0),
        dict(max_seq_len=32, doc_stride=33),  # the pipeline: doc_stride larger than max_seq_len
        dict(max_seq_len=32, doc_stride=32),  # its tokenizer: stride >= the room left
        dict(max_seq_len=16, doc_stride=8),  # the question leaves no more than doc_stride context tokens
    ],
)
def test_bad_arguments_are_errors_where_the_pipeline_raises(tmp_root, kwargs):
    error, theirs = both(tmp_root, "who met whom in the city of zürich?", " ".join(pipelines.TEXTS), **kwargs)
    assert theirs is None, f"the pipeline answered {theirs} for {kwargs}"


@pytest.mark.parametrize("question, context", [("", "a context"), ("a question", "")])
def test_empty_question_or_context_is_an_error_as_in_the_pipeline(tmp_root, question, context):
    error, theirs = both(tmp_root, question, context)
    assert theirs is None and "empty" in error
