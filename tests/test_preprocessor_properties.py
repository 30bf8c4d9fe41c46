"""Preprocessor invariants on arbitrary text, and the masking rates."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import distilbert_hub as hub
from distilbert_hub.preprocessing import TRUNCATE_STRATEGIES, kept_lengths
from harness import strategies
from harness.testing import tiny_backbone_for


@given(
    firsts=st.lists(strategies.texts(), min_size=1, max_size=3),
    data=st.data(),
    sequence_length=st.integers(3, 24),
    truncate=st.sampled_from(["round_robin", "waterfall", "longest_first"]),
)
def test_pairs_are_cls_a_sep_b_sep_and_fit(tiny_tokenizer, firsts, data, sequence_length, truncate):
    seconds = data.draw(st.lists(strategies.texts(), min_size=len(firsts), max_size=len(firsts)))
    tok = tiny_tokenizer
    out = hub.DistilBertTextClassifierPreprocessor(tok, sequence_length, truncate)((firsts, seconds))
    ids, mask = out["token_ids"], out["padding_mask"]
    assert ids.shape == mask.shape == (len(firsts), sequence_length)
    assert ((ids >= 0) & (ids < tok.vocabulary_size())).all()
    for row in range(len(firsts)):
        real = ids[row, mask[row] == 1]
        assert mask[row].tolist() == sorted(mask[row].tolist(), reverse=True)  # right padding only
        assert (ids[row, mask[row] == 0] == tok.pad_token_id).all()
        assert real[0] == tok.cls_token_id and real[-1] == tok.sep_token_id
        assert (real == tok.sep_token_id).sum() == 2 and (real == tok.cls_token_id).sum() == 1
        a, b = tok(firsts[row]), tok(seconds[row])
        split = int(np.flatnonzero(real == tok.sep_token_id)[0])
        assert real[1:split].tolist() == a[: split - 1].tolist()  # a prefix of each segment is kept
        assert real[split + 1 : -1].tolist() == b[: len(real) - split - 2].tolist()


@given(
    first=st.integers(0, 60),
    second=st.integers(0, 60),
    budget=st.integers(1, 60),
    truncate=st.sampled_from(TRUNCATE_STRATEGIES),
)
def test_truncation_never_exceeds_the_budget_and_keeps_all_it_can(first, second, budget, truncate):
    try:
        a, b = kept_lengths(first, second, budget, truncate)
    except ValueError:
        assert truncate in ("only_first", "only_second")
        return
    assert 0 <= a <= first and 0 <= b <= second
    assert a + b == min(budget, first + second)
    if truncate in ("round_robin", "longest_first") and first + second > budget:
        assert abs(a - b) <= 1 or a == first or b == second
        twin = kept_lengths(first, second, budget, "longest_first" if truncate == "round_robin" else "round_robin")
        assert twin == (a, b) or (budget % 2 and twin == (b, a))
    if truncate == "waterfall":
        assert a == min(first, budget)


def test_masking_rates_hold_within_binomial_bounds(tiny_tokenizer):
    preprocessor = hub.DistilBertMaskedLMPreprocessor(
        tiny_tokenizer, sequence_length=16, mask_selection_length=14, seed=7
    )
    texts = ["the quick brown fox jumps over the lazy dog a cat sat on mat"] * 400
    x, mask_ids, weights = preprocessor(texts)
    eligible = int(((x["padding_mask"] == 1).sum(axis=1) - 2).sum())
    selected = int(weights.sum())

    def within(count, trials, rate):
        spread = 5 * np.sqrt(trials * rate * (1 - rate))  # 5 sigma: a false alarm ~1 in 3.5 million
        assert abs(count - trials * rate) <= spread, f"{count} of {trials}, expected rate {rate}"

    within(selected, eligible, 0.15)
    rows, slots = np.nonzero(weights)
    positions = x["mask_positions"][rows, slots]
    now = x["token_ids"][rows, positions]
    original = mask_ids[rows, slots]
    within(int((now == tiny_tokenizer.mask_token_id).sum()), selected, 0.8)
    changed_randomly = int(((now != tiny_tokenizer.mask_token_id) & (now != original)).sum())
    # A random id can equal the original: the expected rate of a visible change is 0.1 * (1 - 1/V).
    within(changed_randomly, selected, 0.1 * (1 - 1 / tiny_tokenizer.vocabulary_size()))
    # The original tokens at selected positions are never [CLS], [SEP] or padding.
    assert not np.isin(original, [tiny_tokenizer.cls_token_id, tiny_tokenizer.sep_token_id]).any()
    assert (x["padding_mask"][rows, positions] == 1).all() and (positions > 0).all()


def test_masking_is_reproducible_under_a_seed(tiny_tokenizer):
    def run(seed):
        return hub.DistilBertMaskedLMPreprocessor(tiny_tokenizer, sequence_length=12, seed=seed)(
            ["a cat sat on the mat"] * 5
        )

    first, second, other = run(3), run(3), run(4)
    np.testing.assert_array_equal(first[0]["token_ids"], second[0]["token_ids"])
    np.testing.assert_array_equal(first[1], second[1])
    assert not all(np.array_equal(a, b) for a, b in zip(first[0].values(), other[0].values()))


def test_selection_is_capped_at_mask_selection_length(tiny_tokenizer):
    x, _, weights = hub.DistilBertMaskedLMPreprocessor(
        tiny_tokenizer, sequence_length=16, mask_selection_rate=1.0, mask_selection_length=3, seed=0
    )(["the quick brown fox jumps over the lazy dog"] * 3)
    assert x["mask_positions"].shape == (3, 3) and (weights.sum(axis=1) == 3).all()


def test_a_tuple_is_segments_and_a_list_is_a_batch(tiny_tokenizer):
    """KerasHub's convention: `("a", "b")` is one pair, `["a", "b"]` two texts."""
    preprocessor = hub.DistilBertTextClassifierPreprocessor(tiny_tokenizer, sequence_length=8)
    pair = preprocessor(("the cat", "a dog"))
    assert pair["token_ids"].shape == (8,)
    assert (pair["token_ids"] == tiny_tokenizer.sep_token_id).sum() == 2
    batch_of_pairs = preprocessor((["the cat"], ["a dog"]))
    np.testing.assert_array_equal(batch_of_pairs["token_ids"][0], pair["token_ids"])
    assert preprocessor(["the cat", "a dog"])["token_ids"].shape == (2, 8)
    for ambiguous, message in (
        (("the cat", ["a dog"]), "all single texts or all batches"),
        (("a", "b", "c"), "one or two segments"),
    ):
        try:
            preprocessor(ambiguous)
        except ValueError as error:
            assert message in str(error), error
        else:
            raise AssertionError(f"{ambiguous!r} was accepted")


def test_longest_first_gives_the_odd_token_to_the_longer_segment():
    # transformers 5.24 (Rust): with 7 tokens of room, 8 + 6 keeps 4 + 3 and 6 + 8 keeps 3 + 4; a tie keeps 3 + 4.
    assert kept_lengths(8, 6, 7, "longest_first") == (4, 3)
    assert kept_lengths(6, 8, 7, "longest_first") == (3, 4)
    assert kept_lengths(8, 8, 7, "longest_first") == (3, 4)
    assert kept_lengths(8, 2, 7, "longest_first") == (5, 2)
    assert kept_lengths(8, 6, 7, "round_robin") == (4, 3) and kept_lengths(8, 8, 7, "round_robin") == (4, 3)


def test_the_masked_lm_masks_afresh_each_epoch_and_reproducibly(tiny_tokenizer):
    """fit on raw text prepares each batch when it is used: the masks differ
    between epochs, and the same seed gives the same sequence of masks."""
    texts = ["the quick brown fox jumps over the lazy dog"] * 8

    def epochs_of_masks(seed):
        backbone = tiny_backbone_for(tiny_tokenizer, num_layers=1, max_sequence_length=12)
        preprocessor = hub.DistilBertMaskedLMPreprocessor(
            tiny_tokenizer, 12, mask_selection_rate=0.3, mask_selection_length=4, seed=seed
        )
        batches, _, _ = hub.DistilBertMaskedLM(backbone, preprocessor=preprocessor)._data(texts, None, None, 8)
        masks = []
        for _ in range(3):
            masks.append(batches[0][0]["mask_positions"].tolist())
            batches.on_epoch_end()
        return masks

    first = epochs_of_masks(seed=5)
    assert first[0] != first[1] and first[1] != first[2], first
    assert epochs_of_masks(seed=5) == first


def test_a_single_string_with_a_single_label(tiny_tokenizer):
    x, y = hub.DistilBertTextClassifierPreprocessor(tiny_tokenizer, sequence_length=8)("the cat", 1)
    assert x["token_ids"].shape == (8,) and int(y) == 1


def test_a_tokenizer_subclass_survives_the_preprocessor_round_trip(tiny_tokenizer):
    import keras

    @keras.saving.register_keras_serializable(package="tests")
    class ShoutingTokenizer(hub.DistilBertTokenizer):
        pass

    tokenizer = ShoutingTokenizer(tiny_tokenizer.get_vocabulary(), lowercase=True)
    preprocessor = hub.DistilBertTextClassifierPreprocessor(tokenizer, sequence_length=8)
    restored = hub.DistilBertTextClassifierPreprocessor.from_config(preprocessor.get_config())
    assert type(restored.tokenizer) is ShoutingTokenizer
    assert restored.get_config() == preprocessor.get_config()


@given(
    question=strategies.sentences(max_words=4),
    context=strategies.sentences(max_words=60),
    sequence_length=st.integers(24, 40),
    stride=st.integers(0, 6),
)
def test_qa_windows_hold_the_whole_context_in_order(tiny_tokenizer, question, context, sequence_length, stride):
    """What HF's overflow promises, checked without HF: consecutive windows
    share `stride` context tokens and together hold every context token.
    (tokenizers 0.23.1/0.23.2 drop the tail; a differential test against
    transformers on those versions is blind to it, as both sides share it.)"""
    context_ids = tiny_tokenizer.tokenize(context).tolist()
    windows = hub.DistilBertQuestionAnswererPreprocessor(tiny_tokenizer, sequence_length, stride).windows(
        [question], [context]
    )
    covered = []
    for ids in windows.token_ids:
        sep = np.flatnonzero(ids == tiny_tokenizer.sep_token_id)
        part = ids[sep[0] + 1 : sep[-1]].tolist() if len(sep) > 1 else []
        overlap = min(stride, len(covered))
        assert part[:overlap] == covered[len(covered) - overlap :], (
            f"window {len(covered)} does not start with the last {overlap} context tokens: {part} after {covered}"
        )
        covered += part[overlap:]
    assert covered == context_ids, f"windows hold {covered}, the context is {context_ids}"


def test_windows_that_drop_the_context_tail_are_refused():
    from types import SimpleNamespace

    from distilbert_hub.distilbert_tokenizer import _check_windows_cover

    def window(context):
        return SimpleNamespace(
            ids=[101, 7, 102, *context, 102], sequence_ids=[None, 0, None] + [1] * len(context) + [None]
        )

    _check_windows_cover([window([1, 2, 3, 4]), window([3, 4, 5, 6])], [1, 2, 3, 4, 5, 6], 2, 0)
    for broken in ([window([1, 2, 3, 4]), window([3, 4, 5])], [window([1, 2, 3, 4]), window([4, 5, 6])]):
        with pytest.raises(RuntimeError, match=r"row 0: the overflow windows of tokenizers .* do not cover"):
            _check_windows_cover(broken, [1, 2, 3, 4, 5, 6], 2, 0)


def test_packed_inputs_are_int32_and_a_one_segment_tuple_is_a_single_text(tiny_tokenizer):
    # KerasHub's preprocessors return int32 ids and mask; a tuple holds segments.
    preprocessor = hub.DistilBertTextClassifierPreprocessor(tiny_tokenizer, sequence_length=8)
    packed = preprocessor(["the cat sat", "a dog"])
    assert {key: value.dtype for key, value in packed.items()} == {"token_ids": np.int32, "padding_mask": np.int32}
    single = preprocessor("the cat sat")
    for key, value in preprocessor(("the cat sat",)).items():
        np.testing.assert_array_equal(value, single[key], err_msg=f"{key}: ('text',) is not 'text'")
