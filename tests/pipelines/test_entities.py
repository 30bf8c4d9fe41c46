"""`DistilBertTokenClassifier.entities`: pieces with offsets, the
aggregation strategies on hand-set scores, label names, bad arguments.
Equality with transformers' pipeline: tests/test_pipeline_parity.py (goldens)
and tests/crosscheck/test_pipelines_vs_transformers.py (live)."""

import numpy as np
import pytest

import distilbert_hub as hub
from distilbert_hub.entity_decoding import EntityDecoder

LABELS = {"0": "O", "1": "B-PER", "2": "I-PER", "3": "B-LOC"}


@pytest.fixture
def tagger(tiny_backbone, tiny_tokenizer):
    preprocessor = hub.DistilBertTokenClassifierPreprocessor(tiny_tokenizer, sequence_length=12)
    return hub.DistilBertTokenClassifier(tiny_backbone, num_classes=4, preprocessor=preprocessor, id2label=LABELS)


def decode(tokenizer, text, labels, strategy, confidence=0.9):
    """The decoder on scores that put `confidence` on each piece's label."""
    encoding = tokenizer.encode_packed(text)
    scores = np.full((len(encoding.ids), 4), (1 - confidence) / 3, np.float32)
    for position, label in enumerate([0, *labels, 0]):
        scores[position, label] = confidence
    decoder = EntityDecoder(tokenizer, LABELS, strategy)
    return decoder(text, encoding.ids, encoding.offsets, encoding.special_tokens_mask, scores)


class TestEntities:
    def test_none_gives_every_piece_with_offsets(self, tagger):
        text = "jane walked in paris"
        pieces = tagger.entities(text, ignore_labels=[])
        assert [p["index"] for p in pieces] == list(range(1, len(pieces) + 1))
        assert all(text[p["start"] : p["end"]] == p["word"] for p in pieces)
        assert all(p["entity"] in LABELS.values() and 0 < p["score"] <= 1 for p in pieces)
        kept = tagger.entities(text)
        assert kept == [p for p in pieces if p["entity"] != "O"]

    def test_simple_groups_b_and_i(self, tiny_tokenizer):
        groups = decode(tiny_tokenizer, "jane cat sat paris", [1, 2, 0, 3], "simple")
        assert [(g["entity_group"], g["word"], g["start"], g["end"]) for g in groups] == [
            ("PER", "jane cat", 0, 8),
            ("O", "sat", 9, 12),
            ("LOC", "paris", 13, 18),
        ]
        assert groups[0]["score"] == pytest.approx(0.9)

    @pytest.mark.parametrize("strategy, label", [("first", "B-PER"), ("max", "B-LOC"), ("average", "B-PER")])
    def test_word_strategies_agree_on_word_boundaries(self, tiny_tokenizer, strategy, label):
        # "cats" is two pieces (cat ##s); each strategy picks one label for the word.
        encoding = tiny_tokenizer.encode_packed("cats")
        assert len(encoding.ids) == 4
        scores = np.array([[1, 0, 0, 0], [0.2, 0.8, 0, 0], [0.05, 0.1, 0, 0.85], [1, 0, 0, 0]], np.float32)
        decoder = EntityDecoder(tiny_tokenizer, LABELS, strategy)
        (word,) = decoder("cats", encoding.ids, encoding.offsets, encoding.special_tokens_mask, scores)
        assert (word["entity_group"], word["word"], word["start"], word["end"]) == (label[2:], "cats", 0, 4)

    def test_unknown_pieces_show_the_text(self, tagger):
        pieces = tagger.entities("jane zzqx", ignore_labels=[])
        assert pieces[-1]["word"] == "zzqx"

    def test_long_texts_are_cut_at_sequence_length(self, tagger):
        pieces = tagger.entities("cat " * 30, ignore_labels=[])
        assert len(pieces) == 10 and pieces[-1]["index"] == 10

    def test_batches(self, tagger):
        assert tagger.entities(["jane walked", "in paris"]) == [
            tagger.entities("jane walked"),
            tagger.entities("in paris"),
        ]

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            ({"aggregation_strategy": "longest"}, ValueError, "aggregation_strategy"),
            ({"ignore_labels": "O"}, TypeError, "ignore_labels"),
            ({"inputs": {"text": "jane"}}, TypeError, "inputs"),
            ({"inputs": ["jane", None]}, TypeError, r"inputs\[1\]"),
        ],
    )
    def test_bad_arguments(self, tagger, kwargs, error, match):
        with pytest.raises(error, match=match):
            tagger.entities(**({"inputs": "jane walked"} | kwargs))

    def test_labels_through_presets(self, tagger, tmp_path):
        tagger.export_to_transformers(tmp_path / "hf")
        reloaded = hub.DistilBertTokenClassifier.from_preset(str(tmp_path / "hf"))
        assert reloaded.id2label == LABELS
        tagger.save_to_preset(tmp_path / "keras")
        assert hub.DistilBertTokenClassifier.from_preset(str(tmp_path / "keras")).id2label == LABELS
