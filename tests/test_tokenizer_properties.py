"""Tokenizer invariants on arbitrary text (no transformers needed)."""

import functools

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from distilbert_hub import DistilBertTokenizer
from harness import strategies
from harness.golden import REPO_ROOT

VOCABULARY = REPO_ROOT / "harness/fixtures/bert_base_uncased_vocab.txt"


@functools.cache
def tokenizer(**options):
    return DistilBertTokenizer(VOCABULARY, **options)


@given(
    texts=st.lists(strategies.texts(), min_size=1, max_size=4),
    options=strategies.tokenizer_options(),
    sequence_length=st.integers(1, 40),
)
def test_ids_in_range_and_dense_equals_truncated_padded_ragged(texts, options, sequence_length):
    tok = tokenizer(**options)
    ragged = tok(texts)
    dense = tok(texts, sequence_length=sequence_length)
    assert dense.shape == (len(texts), sequence_length) and dense.dtype == np.int32
    for row, ids in zip(dense, ragged):
        assert ids.dtype == np.int32 and ((ids >= 0) & (ids < tok.vocabulary_size())).all()
        kept = ids[:sequence_length]
        assert row[: len(kept)].tolist() == kept.tolist()
        assert (row[len(kept) :] == tok.pad_token_id).all()


@given(text=strategies.texts(), options=strategies.tokenizer_options())
def test_offsets_are_ordered_spans_of_the_input(text, options):
    ids, offsets = tokenizer(**options).tokenize_with_offsets(text)
    assert offsets.shape == (len(ids), 2)
    assert ((offsets[:, 0] <= offsets[:, 1]) & (offsets[:, 1] <= len(text))).all()
    assert (np.diff(offsets[:, 0]) >= 0).all()


@given(text=strategies.texts(), options=strategies.tokenizer_options())
def test_special_tokens_appear_only_when_asked(text, options):
    tok = tokenizer(**options)
    specials = {tok.cls_token_id, tok.sep_token_id, tok.pad_token_id, tok.mask_token_id}
    if not options["special_tokens_in_strings"]:
        assert not specials & set(tok(text).tolist())
