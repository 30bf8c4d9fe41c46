"""Differential tests of everything the preprocessors share with
`transformers`: pair truncation for every strategy and budget, QA overflow
windows, word-label alignment, QA training labels (the recipe of transformers'
question-answering example) and span decoding (its pipeline's
`select_starts_ends`). Every failure states what was drawn and both results."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import BertTokenizer
from transformers.models.bert.tokenization_bert import load_vocab
from transformers.pipelines.document_question_answering import select_starts_ends

import distilbert_hub as hub
import distilbert_hub.distilbert_question_answerer_preprocessor as qa
from harness import strategies
from tools.golden_cases.preprocessing import overflow_windows

VOCABULARY = "harness/fixtures/bert_base_uncased_vocab.txt"


def at_least(examples):
    """`examples` per test in CI, or the profile's count when larger (thorough: 2,000)."""
    return settings(max_examples=max(examples, settings.default.max_examples))


OURS = hub.DistilBertTokenizer(VOCABULARY, lowercase=True)
REFERENCE = BertTokenizer(vocab=load_vocab(VOCABULARY), do_lower_case=True)


@at_least(300)
@given(
    first=strategies.sentences(),
    second=strategies.sentences(),
    length=st.integers(3, 30),
    truncate=st.sampled_from(["longest_first", "only_first", "only_second"]),
)
def test_pair_truncation_equals_transformers(first, second, length, truncate):
    drawn = f"first={first!r} second={second!r} sequence_length={length} truncate={truncate}"
    preprocessor = hub.DistilBertTextClassifierPreprocessor(OURS, sequence_length=length, truncate=truncate)
    budget = length - 3
    kept = {"only_first": len(OURS(second)), "only_second": len(OURS(first))}.get(truncate, 0)
    if truncate != "longest_first" and kept >= budget and len(OURS(first)) + len(OURS(second)) > budget:
        # The segment the strategy may cut would lose every token: transformers
        # fails (or, with a segment longer than the budget, cuts the other
        # one); we refuse, naming the row.
        try:
            preprocessor(([first], [second]))
        except ValueError as error:
            assert "cannot fit" in str(error) and "row 0" in str(error), f"{drawn}: {error}"
            return
        raise AssertionError(f"{drawn}: the protected segment has {kept} tokens for a budget of {budget}, yet no error")
    expected = REFERENCE(
        [first], [second], truncation=truncate, max_length=length, padding="max_length", split_special_tokens=True
    )["input_ids"][0]
    ours = preprocessor(([first], [second]))["token_ids"][0].tolist()
    assert ours == expected, (
        f"{drawn}:\n ours         {OURS.detokenize(ours)}\n transformers {OURS.detokenize(expected)}"
    )


@at_least(150)
@given(
    question=strategies.sentences(8),
    context=strategies.sentences(60),
    length=st.integers(12, 40),
    stride=st.integers(0, 10),
)
def test_qa_windows_equal_transformers(question, context, length, stride):
    drawn = f"question={question!r} context={context!r} sequence_length={length} stride={stride}"
    q_tokens = len(REFERENCE.tokenize(question))
    if q_tokens + 3 + stride >= length:  # transformers refuses; ours must refuse as well
        try:
            hub.DistilBertQuestionAnswererPreprocessor(OURS, length, stride).windows([question], [context])
        except ValueError:
            return
        assert q_tokens + 3 + stride < length or len(OURS(context)) + q_tokens + 3 <= length, f"{drawn}: accepted"
        return
    encoded = overflow_windows(REFERENCE, [question], [context], length, stride)
    windows = hub.DistilBertQuestionAnswererPreprocessor(OURS, length, stride).windows([question], [context])
    assert windows.token_ids.tolist() == encoded["input_ids"], drawn


@at_least(200)
@given(rows=st.lists(strategies.word_lists(), min_size=1, max_size=3), length=st.integers(3, 16), data=st.data())
def test_word_labels_equal_transformers_recipe(rows, length, data):
    labels = [data.draw(st.lists(st.integers(0, 4), min_size=len(r), max_size=len(r))) for r in rows]
    encoded = REFERENCE(
        rows,
        is_split_into_words=True,
        truncation=True,
        max_length=length,
        padding="max_length",
        split_special_tokens=True,
    )
    expected = np.full((len(rows), length), -100)
    for row in range(len(rows)):
        previous = None
        for position, word in enumerate(encoded.word_ids(row)):
            if word is not None and word != previous:
                expected[row, position] = labels[row][word]
            previous = word
    x, y, weights = hub.DistilBertTokenClassifierPreprocessor(OURS, length)(rows, labels)
    ours = np.where(weights > 0, y, -100)
    drawn = f"rows={rows} labels={labels} sequence_length={length}"
    assert x["token_ids"].tolist() == encoded["input_ids"], drawn
    assert ours.tolist() == expected.tolist(), f"{drawn}:\n ours {ours.tolist()}\n recipe {expected.tolist()}"


def recipe_labels(encoded, window, start_char, end_char):
    """The labels of transformers' QA training recipe (the course's
    `preprocess_training_examples`; run_qa.py's loop differs only when an
    answer starts at a window's last context token, where it runs on)."""
    sequence_ids, offsets = encoded.sequence_ids(window), encoded["offset_mapping"][window]
    idx = 0
    while sequence_ids[idx] != 1:
        idx += 1
    context_start = idx
    while idx < len(sequence_ids) and sequence_ids[idx] == 1:
        idx += 1
    context_end = idx - 1
    if offsets[context_start][0] > start_char or offsets[context_end][1] < end_char:
        return 0, 0
    idx = context_start
    while idx <= context_end and offsets[idx][0] <= start_char:
        idx += 1
    start = idx - 1
    idx = context_end
    while idx >= context_start and offsets[idx][1] >= end_char:
        idx -= 1
    return start, idx + 1


@at_least(150)
@given(
    context=strategies.sentences(40).filter(lambda c: len(c.split()) >= 2),
    data=st.data(),
    length=st.integers(16, 40),
    stride=st.integers(0, 6),
)
def test_qa_training_labels_equal_the_recipe(context, data, length, stride):
    words = context.split(" ")
    first = data.draw(st.integers(0, len(words) - 1))
    last = data.draw(st.integers(first, min(len(words) - 1, first + 4)))
    start_char = len(" ".join(words[:first])) + (1 if first else 0)
    text = " ".join(words[first : last + 1])
    question = "where is it ?"
    encoded = overflow_windows(REFERENCE, [question], [context], length, stride)
    expected = [recipe_labels(encoded, w, start_char, start_char + len(text)) for w in range(len(encoded["input_ids"]))]
    _, y = hub.DistilBertQuestionAnswererPreprocessor(OURS, length, stride)(
        ([question], [context]), [{"answer_start": start_char, "text": text}]
    )
    ours = list(zip(y["start_logits"].tolist(), y["end_logits"].tolist()))
    assert ours == expected, f"context={context!r} answer={text!r}@{start_char} length={length} stride={stride}"


@at_least(150)
@given(
    context=strategies.sentences(50).filter(lambda c: len(c.split()) >= 1),
    seed=strategies.seeds(),
    max_answer_len=st.integers(1, 6),
    length=st.integers(14, 30),
    top_k=st.integers(1, 12),
    impossible=st.booleans(),
)
def test_span_decoding_equals_the_pipeline(context, seed, max_answer_len, length, top_k, impossible):
    """Each window's candidates (the QA pipeline's `select_starts_ends`, in
    transformers 5 still under document question answering) on random
    logits; the whole pipeline: tox -e crosscheck-qa."""
    preprocessor = hub.DistilBertQuestionAnswererPreprocessor(OURS, length, 4)
    windows = preprocessor.windows(["what ?"], [context])
    rng = np.random.default_rng(seed)
    start = rng.normal(size=windows.token_ids.shape).astype(np.float32) * 3
    end = rng.normal(size=windows.token_ids.shape).astype(np.float32) * 3
    null_score = 1000000.0
    for w in range(len(windows.token_ids)):
        p_mask = 1 - windows.context_mask[w]
        p_mask[0] = 0  # the pipeline keeps [CLS]
        drawn = f"context={context!r} seed={seed} window={w} top_k={top_k} max_answer_len={max_answer_len}"
        arguments = (null_score, top_k, impossible, max_answer_len)
        expected = select_starts_ends(
            start[w][None], end[w][None], p_mask[None], windows.padding_mask[w][None], *arguments
        )
        allowed = windows.context_mask[w] | (windows.token_ids[w] == OURS.cls_token_id)
        ours = qa.select_starts_ends(start[w], end[w], allowed, *arguments)
        for name, a, b in zip(("starts", "ends", "scores", "null score"), ours, expected):
            np.testing.assert_array_equal(a, b, err_msg=f"{drawn}: {name}")
        null_score = expected[3]
