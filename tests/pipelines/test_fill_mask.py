"""`DistilBertMaskedLM.fill_mask`: the pipeline's keys and nesting, several
masks, targets (in and out of the vocabulary), sequences, bad arguments.
Equality with transformers' pipeline: tests/test_pipeline_parity.py (goldens)
and tests/crosscheck/test_pipelines_vs_transformers.py (live)."""

import contextlib

import numpy as np
import pytest

import distilbert_hub as hub
from distilbert_hub.pipeline_outputs import softmax


@pytest.fixture
def masked_lm(tiny_backbone, tiny_tokenizer):
    preprocessor = hub.DistilBertMaskedLMPreprocessor(tiny_tokenizer, sequence_length=12)
    return hub.DistilBertMaskedLM(tiny_backbone, preprocessor=preprocessor)


def probabilities(model, ids, positions):
    x = {
        "token_ids": np.asarray([ids], "int32"),
        "padding_mask": np.ones((1, len(ids)), "int32"),
        "mask_positions": np.asarray([positions], "int32"),
    }
    return softmax(np.asarray(model.predict_on_batch(x))[0, 0])


class TestFillMask:
    def test_one_mask(self, masked_lm, tiny_tokenizer):
        result = masked_lm.fill_mask("the cat sat on the [MASK].", top_k=3)
        ids = tiny_tokenizer.encode_packed("the cat sat on the [MASK].", special_tokens_in_strings=True).ids
        expected = probabilities(masked_lm, ids, [6])
        best = np.argsort(-expected, kind="stable")[:3]
        assert [r["token"] for r in result] == best.tolist()
        np.testing.assert_allclose([r["score"] for r in result], expected[best], atol=1e-6)
        first = result[0]
        assert set(first) == {"score", "token", "token_str", "sequence"}
        assert first["token_str"] == tiny_tokenizer.id_to_token(first["token"])
        assert first["sequence"].startswith("the cat sat on the") and "[CLS]" not in first["sequence"]

    def test_several_masks_give_one_list_per_mask(self, masked_lm):
        result = masked_lm.fill_mask("the [MASK] sat on the [MASK].", top_k=2)
        assert [len(per_mask) for per_mask in result] == [2, 2]
        # The pipeline keeps the special tokens (and the other mask) in a multi-mask sequence.
        assert result[0][0]["sequence"].startswith("[CLS] the") and "[MASK]" in result[0][0]["sequence"]

    def test_batches_nest_per_text(self, masked_lm):
        batch = masked_lm.fill_mask(["the [MASK].", "a [MASK] [MASK]"], top_k=1)
        assert len(batch) == 2 and isinstance(batch[0][0], dict) and isinstance(batch[1][0], list)
        assert batch[0] == masked_lm.fill_mask("the [MASK].", top_k=1)

    def test_targets(self, masked_lm, tiny_tokenizer):
        result = masked_lm.fill_mask("the [MASK].", top_k=5, targets=["cat", "dog", "cat"])
        assert sorted(r["token_str"] for r in result) == ["cat", "dog"]  # top_k capped, duplicates once
        ids = tiny_tokenizer.encode_packed("the [MASK].", special_tokens_in_strings=True).ids
        expected = probabilities(masked_lm, ids, [2])
        assert result[0]["score"] == pytest.approx(expected[result[0]["token"]], abs=1e-6)

    def test_target_outside_the_vocabulary_takes_its_first_piece(self, masked_lm):
        with pytest.warns(UserWarning, match="first word piece 'cat'"):
            result = masked_lm.fill_mask("the [MASK].", targets="cats")
        assert [r["token_str"] for r in result] == ["cat"]

    def test_mask_found_whatever_special_tokens_in_strings(self, tiny_backbone, tiny_tokenizer):
        assert not tiny_tokenizer.special_tokens_in_strings
        model = hub.DistilBertMaskedLM(
            tiny_backbone, preprocessor=hub.DistilBertMaskedLMPreprocessor(tiny_tokenizer, sequence_length=12)
        )
        assert len(model.fill_mask("the [MASK].")) == 5

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            ({"inputs": "the cat"}, ValueError, r"inputs\[0\] has no mask token"),
            ({"inputs": ["the [MASK]", "no mask"]}, ValueError, r"inputs\[1\]"),
            ({"top_k": 0}, ValueError, "top_k"),
            ({"top_k": 10_000}, ValueError, "top_k"),
            ({"targets": [" "]}, ValueError, "targets"),
            ({"targets": 3}, TypeError, "targets"),
            ({"inputs": {"text": "the [MASK]"}}, TypeError, "inputs"),
            ({"inputs": "the [MASK] " * 10}, ValueError, "sequence_length"),
        ],
    )
    def test_bad_arguments(self, masked_lm, kwargs, error, match):
        warns = pytest.warns(UserWarning) if kwargs.get("targets") == [" "] else contextlib.nullcontext()
        with warns, pytest.raises(error, match=match):
            masked_lm.fill_mask(**({"inputs": "the [MASK]."} | kwargs))
