"""`DistilBertTextClassifier.classify`: the pipeline's output shapes, score
functions, tie order and label names, and how labels travel through presets.
Equality with transformers' pipeline: tests/test_pipeline_parity.py (goldens)
and tests/crosscheck/test_pipelines_vs_transformers.py (live)."""

import json

import numpy as np
import pytest

import distilbert_hub as hub
from distilbert_hub.pipeline_outputs import sigmoid, softmax

LABELS = {"0": "negative", "1": "neutral", "2": "positive"}


def classifier(backbone, tokenizer, **kwargs):
    preprocessor = hub.DistilBertTextClassifierPreprocessor(tokenizer, sequence_length=12)
    return hub.DistilBertTextClassifier(backbone, preprocessor=preprocessor, dropout=0.0, **kwargs)


def logits_of(model, text):
    return np.asarray(model.predict(text if isinstance(text, tuple) else [text], verbose=0))[0]


class TestClassify:
    def test_default_top_k_is_the_pipeline_without_top_k(self, tiny_backbone, tiny_tokenizer):
        model = classifier(tiny_backbone, tiny_tokenizer, num_classes=3, id2label=LABELS)
        expected = softmax(logits_of(model, "good movie"))
        (single,) = model.classify("good movie")
        assert single == {"label": LABELS[str(expected.argmax())], "score": pytest.approx(expected.max(), abs=1e-6)}
        batch = model.classify(["good movie", "bad book"])
        assert [type(item) for item in batch] == [dict, dict]

    def test_top_k_ranks_labels(self, tiny_backbone, tiny_tokenizer):
        model = classifier(tiny_backbone, tiny_tokenizer, num_classes=3, id2label=LABELS)
        expected = softmax(logits_of(model, "good movie"))
        ranked = model.classify("good movie", top_k=None)
        assert [entry["label"] for entry in ranked] == [LABELS[str(i)] for i in np.argsort(-expected, kind="stable")]
        assert len(model.classify("good movie", top_k=2)) == 2
        nested = model.classify(["good movie", "bad book"], top_k=2)
        assert [len(row) for row in nested] == [2, 2]

    def test_score_functions(self, tiny_backbone, tiny_tokenizer):
        model = classifier(tiny_backbone, tiny_tokenizer, num_classes=3)
        logits = logits_of(model, "good movie")
        for name, function in (("softmax", softmax), ("sigmoid", sigmoid), ("none", lambda x: x)):
            scores = {e["label"]: e["score"] for e in model.classify("good movie", top_k=None, function_to_apply=name)}
            np.testing.assert_allclose([scores[f"LABEL_{i}"] for i in range(3)], function(logits), atol=1e-6)

    @pytest.mark.parametrize(
        "num_classes, problem_type, function",
        [(3, None, softmax), (1, None, sigmoid), (3, "multi_label_classification", sigmoid), (1, "regression", None)],
    )
    def test_default_function_follows_problem_type(
        self, tiny_backbone, tiny_tokenizer, num_classes, problem_type, function
    ):
        model = classifier(tiny_backbone, tiny_tokenizer, num_classes=num_classes, problem_type=problem_type)
        logits = logits_of(model, "good movie")
        scores = [e["score"] for e in sorted(model.classify("good movie", top_k=None), key=lambda e: e["label"])]
        np.testing.assert_allclose(scores, logits if function is None else function(logits), atol=1e-6)

    def test_ties_keep_label_order(self, tiny_backbone, tiny_tokenizer):
        # Equal scores: the pipeline's stable sort keeps label order, its argmax the first label.
        model = classifier(tiny_backbone, tiny_tokenizer, num_classes=3, id2label=LABELS)
        model.output_dense.kernel.assign(np.zeros(model.output_dense.kernel.shape, "float32"))
        ranked = model.classify("good movie", top_k=None)
        assert [e["label"] for e in ranked] == ["negative", "neutral", "positive"]
        assert model.classify("good movie")[0]["label"] == "negative"

    def test_pairs(self, tiny_backbone, tiny_tokenizer):
        model = classifier(tiny_backbone, tiny_tokenizer, num_classes=3)
        expected = softmax(logits_of(model, (["good movie"], ["bad book"])))
        as_dict = model.classify({"text": "good movie", "text_pair": "bad book"})
        assert as_dict == model.classify(("good movie", "bad book"))
        assert as_dict["score"] == pytest.approx(expected.max(), abs=1e-6)  # a lone pair: the dict, unwrapped
        assert model.classify([{"text": "good movie", "text_pair": "bad book"}, "good movie"])[0] == as_dict

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            ({"top_k": 0}, ValueError, "top_k"),
            ({"top_k": "2"}, ValueError, "top_k"),
            ({"function_to_apply": "relu"}, ValueError, "function_to_apply"),
            ({"inputs": {"txt": "good"}}, ValueError, "text_pair"),
            ({"inputs": [["good movie", "bad book"]]}, ValueError, "text_pair"),
            ({"inputs": []}, TypeError, "inputs"),
            ({"inputs": [3]}, ValueError, r"inputs\[0\]"),
            ({"inputs": "good " * 20}, ValueError, "sequence_length"),
        ],
    )
    def test_bad_arguments(self, tiny_backbone, tiny_tokenizer, kwargs, error, match):
        model = classifier(tiny_backbone, tiny_tokenizer, num_classes=3)
        with pytest.raises(error, match=match):
            model.classify(**({"inputs": "good movie"} | kwargs))

    def test_needs_a_preprocessor(self, tiny_backbone):
        with pytest.raises(ValueError, match="preprocessor"):
            hub.DistilBertTextClassifier(tiny_backbone, num_classes=2).classify("good")


class TestLabels:
    @pytest.mark.parametrize(
        "id2label, match",
        [
            ({"0": "a", "1": "b"}, "each of the 3"),
            ({"0": "a", "1": "b", "x": "c"}, "class ids"),
            ({0: "a", 1: 2, 2: "c"}, "str"),
        ],
    )
    def test_bad_id2label(self, tiny_backbone, id2label, match):
        with pytest.raises((ValueError, TypeError), match=match):
            hub.DistilBertTextClassifier(tiny_backbone, num_classes=3, id2label=id2label)

    def test_bad_problem_type(self, tiny_backbone):
        with pytest.raises(ValueError, match="problem_type"):
            hub.DistilBertTextClassifier(tiny_backbone, num_classes=3, problem_type="ranking")

    def test_integer_keys_are_kept_as_strings(self, tiny_backbone):
        model = hub.DistilBertTextClassifier(tiny_backbone, num_classes=3, id2label={0: "a", 1: "b", 2: "c"})
        assert model.get_config()["id2label"] == {"0": "a", "1": "b", "2": "c"}

    def test_labels_through_presets_and_export(self, tiny_backbone, tiny_tokenizer, tmp_path):
        model = classifier(
            tiny_backbone, tiny_tokenizer, num_classes=3, id2label=LABELS, problem_type="multi_label_classification"
        )
        model.save_to_preset(tmp_path / "preset")
        restored = hub.DistilBertTextClassifier.from_preset(str(tmp_path / "preset"))
        assert (restored.id2label, restored.problem_type) == (LABELS, "multi_label_classification")
        model.export_to_transformers(tmp_path / "hf")
        config = json.loads((tmp_path / "hf" / "config.json").read_text())
        assert config["id2label"] == LABELS and config["label2id"] == {v: int(k) for k, v in LABELS.items()}
        assert config["problem_type"] == "multi_label_classification"
        reloaded = hub.DistilBertTextClassifier.from_preset(str(tmp_path / "hf"))
        assert (reloaded.id2label, reloaded.problem_type) == (LABELS, "multi_label_classification")
        assert reloaded.classify("good movie", top_k=None) == model.classify("good movie", top_k=None)
