"""Pair truncation at its boundaries, where transformers' tokenizers decide:
an exact fit keeps everything under every strategy (also with an empty
segment), and `only_first` / `only_second` refuse a fit that would leave the
cut segment with no token (tokenizers' "sequence to truncate too short")."""

import pytest

from distilbert_hub.preprocessing import kept_lengths

STRATEGIES = ("round_robin", "longest_first", "waterfall", "only_first", "only_second")


@pytest.mark.parametrize(
    "truncate, first, second",
    [(t, a, b) for t in STRATEGIES for a, b in [(5, 0), (0, 5), (3, 2), (2, 3), (1, 4)]],
)
def test_an_exact_fit_keeps_every_token(truncate, first, second):
    assert kept_lengths(first, second, first + second, truncate) == (first, second)


@pytest.mark.parametrize(
    "truncate, first, second, message",
    [
        ("only_first", 3, 5, "the second segment alone has 5 tokens"),
        ("only_second", 5, 3, "the first segment alone has 5 tokens"),
    ],
)
def test_a_fit_that_would_empty_the_cut_segment_is_refused(truncate, first, second, message):
    with pytest.raises(ValueError, match=f"row 0: truncate='{truncate}' cannot fit: {message}"):
        kept_lengths(first, second, 5, truncate)


def test_one_token_over_is_cut_from_the_segment_the_strategy_names():
    assert kept_lengths(4, 2, 5, "only_first") == (3, 2)
    assert kept_lengths(2, 4, 5, "only_second") == (2, 3)


def test_a_refused_pair_in_a_batch_is_named_by_its_row(tiny_tokenizer):
    import distilbert_hub as hub

    preprocessor = hub.DistilBertTextClassifierPreprocessor(tiny_tokenizer, sequence_length=8, truncate="only_second")
    firsts, seconds = ["the cat", "the quick brown fox jumps over the dog"], ["a dog", "a cat"]
    with pytest.raises(ValueError, match="row 1: truncate='only_second' cannot fit"):
        preprocessor((firsts, seconds))
