"""Differential tests: `classify`, `fill_mask`, `entities` and the
embedder against live transformers pipelines on arbitrary text, each model a seeded checkpoint that
transformers writes (`save_pretrained`, with label names) and `from_preset`
loads. Ranked lists must hold the same candidates in the same order, except
that candidates whose scores are within the score tolerance may swap (a tie
to float32 rounding); every score within 1e-5, every label, token, word and
offset exact; embeddings (the `feature-extraction` pipeline's states pooled
as sentence-transformers pools them) within 1e-5."""

import contextlib
import functools
import logging

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import distilbert_hub as hub
from harness import strategies
from harness.pipeline_results import SCORE_ATOL
from tools.golden_cases import pipelines

MODELS = {
    "text_classification": (hub.DistilBertTextClassifier, dict(id2label=dict(enumerate(pipelines.SENTIMENT_LABELS)))),
    "fill_mask": (hub.DistilBertMaskedLM, {}),
    "token_classification": (hub.DistilBertTokenClassifier, dict(id2label=dict(enumerate(pipelines.NER_LABELS)))),
    "feature_extraction": (hub.DistilBertTextEmbedder, {}),
}
SCALES = {"text_classification": 1.0, "fill_mask": 20.0, "token_classification": 1.0, "feature_extraction": None}


@functools.cache
def models(task, tmp_root):
    """(ours via from_preset of what transformers saved, transformers' pipeline)."""
    import pathlib

    cls, overrides = MODELS[task]
    model, _ = pipelines.seeded_model(task, 7, SCALES[task], **overrides)
    directory = pathlib.Path(tmp_root) / task
    model.save_pretrained(directory)
    pipelines.reference_tokenizer().save_pretrained(directory)
    return cls.from_preset(str(directory)), pipelines.reference_pipeline(task, model)


@pytest.fixture(scope="module")
def tmp_root(tmp_path_factory):
    logging.getLogger("transformers").setLevel(logging.ERROR)
    return str(tmp_path_factory.mktemp("pipelines"))


def fits(text, limit=62):
    return len(pipelines.reference_tokenizer()(text)["input_ids"]) <= limit + 2


def assert_same(ours, theirs, where="result"):
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs), f"{where}: keys {ours} vs {theirs}"
        for key in theirs:
            if key == "score":
                assert abs(ours[key] - float(theirs[key])) <= SCORE_ATOL, f"{where}.score: {ours[key]} vs {theirs[key]}"
            else:
                assert_same(ours[key], theirs[key], f"{where}.{key}")
        return
    if isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), f"{where}: {ours} vs {theirs}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            swapped = (
                isinstance(b, dict)
                and "score" in b
                and a != b
                and any(
                    abs(float(b["score"]) - float(other["score"])) <= SCORE_ATOL for other in theirs if other is not b
                )
            )
            if swapped:  # a near tie: the same candidate must be somewhere near in their list
                assert any(
                    {k: v for k, v in a.items() if k != "score"} == {k: v for k, v in c.items() if k != "score"}
                    and abs(a["score"] - float(c["score"])) <= SCORE_ATOL
                    for c in theirs
                ), f"{where}[{i}]: {a} is not among {theirs}"
                continue
            assert_same(a, b, f"{where}[{i}]")
        return
    if isinstance(theirs, np.generic):
        theirs = theirs.item()
    assert ours == theirs, f"{where}: {ours!r} vs {theirs!r}"


@settings(max_examples=25)
@given(
    texts=st.lists(strategies.texts(40), min_size=1, max_size=3),
    pair=st.booleans(),
    top_k=st.sampled_from([1, 2, None]),
    function=st.sampled_from([None, "softmax", "sigmoid", "none"]),
)
def test_classify_matches_the_pipeline(tmp_root, texts, pair, top_k, function):
    assume(all(fits(t, 30) for t in texts))
    ours, theirs = models("text_classification", tmp_root)
    inputs = [{"text": t, "text_pair": t[::-1]} for t in texts] if pair else texts
    kwargs = {"function_to_apply": function} | ({} if top_k == 1 else {"top_k": top_k})
    assert_same(ours.classify(inputs, top_k=top_k, function_to_apply=function), theirs(inputs, **kwargs))
    assert_same(ours.classify(inputs[0], top_k=top_k), theirs(inputs[0], **({} if top_k == 1 else {"top_k": top_k})))


@settings(max_examples=25)
@given(
    text=strategies.masked_texts(),
    top_k=st.integers(1, 6),
    targets=st.one_of(st.none(), st.lists(st.sampled_from(["paris", "the", "Tokyo", "crème", "##s", "a"]), min_size=1)),
)
def test_fill_mask_matches_the_pipeline(tmp_root, text, top_k, targets):
    assume(fits(text))
    ours, theirs = models("fill_mask", tmp_root)
    with pytest.warns() if targets and {"Tokyo", "crème"} & set(targets) else contextlib.nullcontext():
        result = ours.fill_mask(text, top_k=top_k, targets=targets)
    assert_same(result, theirs(text, top_k=top_k, targets=targets))


@settings(max_examples=25)
@given(
    texts=st.lists(strategies.texts(60), min_size=1, max_size=3),
    strategy=st.sampled_from(["none", "simple", "first", "average", "max"]),
    ignore=st.sampled_from([None, [], ["O", "B-PER"]]),
)
def test_entities_match_the_pipeline(tmp_root, texts, strategy, ignore):
    assume(all(fits(t) for t in texts))
    ours, theirs = models("token_classification", tmp_root)
    kwargs = {"aggregation_strategy": strategy, "ignore_labels": ignore}
    assert_same(ours.entities(texts, **kwargs), theirs(texts, **kwargs))
    assert_same(ours.entities(texts[0], **kwargs), theirs(texts[0], **kwargs))


@settings(max_examples=25)
@given(
    texts=st.lists(strategies.texts(60), min_size=1, max_size=4),
    pooling=st.sampled_from(["mean", "cls", "max"]),
    normalize=st.booleans(),
)
def test_embeddings_match_the_feature_extraction_pipeline(tmp_root, texts, pooling, normalize):
    """Texts of different lengths in one batch: padding never counts."""
    assume(all(fits(t) for t in texts))
    loaded, theirs = models("feature_extraction", tmp_root)
    ours = hub.DistilBertTextEmbedder(loaded.backbone, loaded.preprocessor, pooling=pooling, normalize=normalize)
    expected = np.stack([pipelines.pooled_embeddings(theirs(text), pooling, normalize) for text in texts])
    actual = np.asarray(ours.predict(texts, verbose=0))
    assert actual.shape == expected.shape, f"{actual.shape} vs {expected.shape}"
    error = np.abs(actual.astype(np.float64) - expected)
    worst = np.unravel_index(np.argmax(error), error.shape)
    assert error[worst] <= pipelines.EMBEDDING_ATOL, (
        f"texts={texts!r} pooling={pooling} normalize={normalize}: max abs error {error[worst]:.3e} at {worst} "
        f"(ours {actual[worst]}, pipeline {expected[worst]})"
    )


def test_ties_are_broken_in_the_pipelines_order(tmp_root):
    """A zero classifier gives every label one score: both keep label order."""
    ours, theirs = models("text_classification", tmp_root)
    kernel, bias = (np.array(v.numpy()) for v in (ours.output_dense.kernel, ours.output_dense.bias))
    weight, their_bias = (t.detach().clone() for t in (theirs.model.classifier.weight, theirs.model.classifier.bias))
    try:
        ours.output_dense.kernel.assign(np.zeros_like(kernel))
        ours.output_dense.bias.assign(np.zeros(3, "float32"))
        theirs.model.classifier.weight.data.zero_()
        theirs.model.classifier.bias.data.zero_()
        assert ours.classify("a tie", top_k=None) == theirs("a tie", top_k=None)
        assert ours.classify(["a tie"]) == theirs(["a tie"])
    finally:
        ours.output_dense.kernel.assign(kernel)
        ours.output_dense.bias.assign(bias)
        theirs.model.classifier.weight.data.copy_(weight)
        theirs.model.classifier.bias.data.copy_(their_bias)
