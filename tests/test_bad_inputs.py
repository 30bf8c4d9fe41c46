"""Every bad input gets a clear library error: the exception type and a phrase
that names the problem, on every backend and through every entry point.
Checkpoint and preset faults are in test_checkpoint_errors.py, the gate's in
harness/meta_tests/test_gate_fails_closed.py."""

import json

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import distilbert_hub as hub

VOCABULARY = (
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    + (["the", "quick", "brown", "fox", "a", "cat", "sat", "on", "mat", "who", "what", "is", "good", "bad", "movie"])
    + ["##s", ".", "?"]
)
V = len(VOCABULARY)
IDS = np.array([[2, 5, 6, 3], [2, 7, 3, 0]], np.int32)
MASK = np.array([[1, 1, 1, 1], [1, 1, 1, 0]], np.int32)


@pytest.fixture(scope="module")
def models():
    keras.utils.set_random_seed(0)
    tokenizer = hub.DistilBertTokenizer(VOCABULARY, lowercase=True)
    backbone = hub.DistilBertBackbone(
        vocabulary_size=V,
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=8,
        dropout=0.0,
    )
    classifier = hub.DistilBertTextClassifier(
        backbone, num_classes=3, preprocessor=hub.DistilBertTextClassifierPreprocessor(tokenizer, 8)
    )
    classifier.compile(optimizer="sgd")
    masked_lm = hub.DistilBertMaskedLM(backbone)
    masked_lm.compile(optimizer="sgd")
    tagger = hub.DistilBertTokenClassifier(backbone, num_classes=4)
    tagger.compile(optimizer="sgd")
    qa = hub.DistilBertQuestionAnswerer(backbone)
    qa.compile(optimizer="sgd")
    choice = hub.DistilBertMultipleChoice(backbone)
    choice.compile(optimizer="sgd")
    return dict(
        tokenizer=tokenizer,
        backbone=backbone,
        hidden=backbone.hidden_states_model(),
        classifier=classifier,
        masked_lm=masked_lm,
        tagger=tagger,
        qa=qa,
        choice=choice,
    )


def inputs(ids=IDS, mask=MASK, **extra):
    return {"token_ids": ids, "padding_mask": mask, **extra}


BAD_MODEL_INPUTS = {
    "id equal to the vocabulary size": (inputs(np.where(IDS == 6, V, IDS)), ValueError, f"token id {V} at index"),
    "negative id": (inputs(np.where(IDS == 6, -1, IDS)), ValueError, "token id -1 at index"),
    "fractional float ids": (
        inputs(np.where(IDS == 7, 7.5, IDS)),
        TypeError,
        r"'token_ids' must hold integers; got dtype float64 \(e\.g\. 7\.5 at index \(1, 1\)\)\. Cast",
    ),
    "integral float ids": (inputs(IDS.astype("float32")), TypeError, r"must hold integers; got dtype float32\. Cast"),
    "string ids": (inputs(IDS.astype(str)), TypeError, r"must hold integers; got dtype <U\d+\. Cast"),
    "padding mask of 2": (inputs(mask=MASK * 2), ValueError, "'padding_mask' holds 2"),
    "padding mask of -1": (inputs(mask=-MASK), ValueError, "'padding_mask' holds -1"),
    "float padding mask": (inputs(mask=MASK * 0.5), TypeError, "'padding_mask' must hold 0/1 integers or booleans"),
    "all-zero mask row": (inputs(mask=MASK * np.array([[1], [0]])), ValueError, r"row \(1,\) of 'padding_mask' has no"),
    "shapes differ": (inputs(mask=MASK[:, :3]), ValueError, "they must be equal"),
    "too long": (inputs(np.ones((1, 9), "int32"), np.ones((1, 9), "int32")), ValueError, "exceeds max_sequence_length"),
    "empty batch": (inputs(np.zeros((0, 4), "int32"), np.zeros((0, 4), "int32")), ValueError, "empty input"),
    "empty rows": (inputs(np.zeros((2, 0), "int32"), np.zeros((2, 0), "int32")), ValueError, "empty input"),
    "unbatched ids": (inputs(IDS[0], MASK[0]), ValueError, "must be batched"),
    "no padding mask": ({"token_ids": IDS}, ValueError, "needs an input named 'padding_mask'"),
    "no token ids": ({"padding_mask": MASK}, ValueError, "needs an input named 'token_ids'"),
    "a list, not a dict": ([IDS, MASK], TypeError, "takes .*a dict"),
}
ENTRY_POINTS = {
    "backbone __call__": lambda m, x: m["backbone"](x),
    "backbone predict": lambda m, x: m["backbone"].predict(x, verbose=0),
    "backbone predict_on_batch": lambda m, x: m["backbone"].predict_on_batch(x),
    "hidden_states_model __call__": lambda m, x: m["hidden"](x),
    "hidden_states_model predict": lambda m, x: m["hidden"].predict(x, verbose=0),
    "classifier train_on_batch": lambda m, x: m["classifier"].train_on_batch(x, np.array([0, 1])),
    "classifier fit": lambda m, x: m["classifier"].fit(x, np.array([0, 1]), verbose=0),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("case", sorted(BAD_MODEL_INPUTS))
def test_bad_model_inputs_are_refused_everywhere(models, entry, case):
    bad, error, phrase = BAD_MODEL_INPUTS[case]
    with pytest.raises(error, match=phrase):
        ENTRY_POINTS[entry](models, bad)


LABELLED = inputs()
BAD_TRAINING = {
    "label past num_classes (train_on_batch)": (
        lambda m: m["classifier"].train_on_batch(LABELLED, np.array([0, 7])),
        ValueError,
        r"label 7 at index \(1,\)",
    ),
    "label past num_classes (test_on_batch)": (
        lambda m: m["classifier"].test_on_batch(LABELLED, np.array([7, 0])),
        ValueError,
        "label 7",
    ),
    "label past num_classes (evaluate)": (
        lambda m: m["classifier"].evaluate(LABELLED, np.array([0, 7]), verbose=0),
        ValueError,
        "label 7",
    ),
    "label past num_classes (generator)": (
        lambda m: m["classifier"].fit((b for b in [(LABELLED, np.array([0, 7]))]), verbose=0),
        ValueError,
        "label 7",
    ),
    "label past num_classes (PyDataset)": (
        lambda m: m["classifier"].fit(Batches([(LABELLED, np.array([0, 7]))]), verbose=0),
        ValueError,
        "label 7",
    ),
    "negative label": (lambda m: m["classifier"].fit(LABELLED, np.array([-1, 0]), verbose=0), ValueError, "label -1"),
    "float labels": (
        lambda m: m["classifier"].fit(LABELLED, np.array([0.7, 1.9]), verbose=0),
        TypeError,
        r"class labels must be integers in \[0, 3\); got dtype float\d+ \(e\.g\. 0\.7\d*\)\. Cast",
    ),
    "float labels (train_on_batch)": (
        lambda m: m["classifier"].train_on_batch(LABELLED, np.array([0.0, 1.0])),
        TypeError,
        "class labels must be integers",
    ),
    "bad ids from a generator": (
        lambda m: m["classifier"].fit((b for b in [(inputs(IDS + V), np.array([0, 1]))]), verbose=0),
        ValueError,
        "outside \\[0, vocabulary_size",
    ),
    "bad ids from a PyDataset": (
        lambda m: m["classifier"].predict(Batches([inputs(mask=MASK * 3)]), verbose=0),
        ValueError,
        "holds 3",
    ),
    "raw text from a generator with a bad label": (
        lambda m: m["classifier"].fit((b for b in [(["a cat", "the fox"], np.array([0, 5]))]), verbose=0),
        ValueError,
        "label 5",
    ),
    "token label past num_classes": (
        lambda m: m["tagger"].train_on_batch(LABELLED, np.full((2, 4), 4)),
        ValueError,
        "label 4",
    ),
    "float token labels": (
        lambda m: m["tagger"].fit(LABELLED, np.full((2, 4), 1.5), verbose=0),
        TypeError,
        "must be integers",
    ),
    "choice label past the choices": (
        lambda m: m["choice"].train_on_batch(inputs(IDS[None].repeat(2, 0), MASK[None].repeat(2, 0)), np.array([0, 2])),
        ValueError,
        r"label 2 .*num_classes=2",
    ),
    "float choice labels": (
        lambda m: m["choice"].fit(
            inputs(IDS[None].repeat(2, 0), MASK[None].repeat(2, 0)), np.array([0.5, 1.0]), verbose=0
        ),
        TypeError,
        "must be integers",
    ),
    "masked LM label past the vocabulary": (
        lambda m: m["masked_lm"].train_on_batch(inputs(mask_positions=np.array([[1], [1]])), np.array([[V], [1]])),
        ValueError,
        f"label {V}",
    ),
    "mask position on padding": (
        lambda m: m["masked_lm"](inputs(mask_positions=np.array([[1], [3]]))),
        ValueError,
        "mask position 3 of row 1 is a padding token",
    ),
    "mask position outside": (
        lambda m: m["masked_lm"](inputs(mask_positions=np.array([[1], [4]]))),
        ValueError,
        "mask position 4 at index",
    ),
    "negative mask position": (
        lambda m: m["masked_lm"](inputs(mask_positions=np.array([[-1], [1]]))),
        ValueError,
        "mask position -1",
    ),
    "float mask positions": (
        lambda m: m["masked_lm"](inputs(mask_positions=np.array([[1.0], [2.0]]))),
        TypeError,
        "DistilBertMaskedLM: 'mask_positions' must hold integers",
    ),
    "mask positions of another batch": (
        lambda m: m["masked_lm"](inputs(mask_positions=np.array([[1], [1], [1]]))),
        ValueError,
        "with the batch of 'token_ids'",
    ),
    "QA start after end": (
        lambda m: m["qa"].train_on_batch(LABELLED, {"start_logits": np.array([2, 1]), "end_logits": np.array([1, 1])}),
        ValueError,
        "row 0 has start 2 after end 1",
    ),
    "QA position past the sequence": (
        lambda m: m["qa"].train_on_batch(LABELLED, {"start_logits": np.array([1, 9]), "end_logits": np.array([1, 9])}),
        ValueError,
        "label 9",
    ),
    "QA labels not a dict": (
        lambda m: m["qa"].train_on_batch(LABELLED, np.array([1, 2])),
        ValueError,
        "labels are {'start_logits'",
    ),
}


class Batches(keras.utils.PyDataset):
    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        return self.batches[index]


@pytest.mark.parametrize("case", sorted(BAD_TRAINING))
def test_bad_training_data_is_refused(models, case):
    run, error, phrase = BAD_TRAINING[case]
    with pytest.raises(error, match=phrase):
        run(models)


BAD_TEXT_INPUTS = {
    "None text": (lambda m: m["tokenizer"](None), TypeError, "got None"),
    "an int among texts": (lambda m: m["tokenizer"](["ok", 3]), TypeError, "input item 1 is int 3"),
    "invalid UTF-8 bytes": (
        lambda m: m["tokenizer"]([b"ok", b"\xff"]),
        ValueError,
        "input item 1 is bytes that are not",
    ),
    "detokenize an id past the vocabulary": (
        lambda m: m["tokenizer"].detokenize([1, V]),
        ValueError,
        f"id {V} is outside",
    ),
    "id_to_token past the vocabulary": (lambda m: m["tokenizer"].id_to_token(V), ValueError, f"id {V} is outside"),
    "unknown token": (lambda m: m["tokenizer"].token_to_id("zebra"), ValueError, "'zebra' is not in the vocabulary"),
    "vocabulary without [MASK]": (
        lambda m: hub.DistilBertTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"]),
        ValueError,
        r"lacks required special token\(s\) \['\[MASK\]'\]",
    ),
    "duplicate token": (lambda m: hub.DistilBertTokenizer(VOCABULARY + ["the"]), ValueError, "duplicate token 'the'"),
    "missing vocabulary file": (
        lambda m: hub.DistilBertTokenizer("/no/vocab.txt"),
        FileNotFoundError,
        "'/no/vocab.txt' does not exist",
    ),
    "unknown truncation": (
        lambda m: hub.DistilBertTextClassifierPreprocessor(m["tokenizer"], 8, truncate="middle"),
        ValueError,
        "truncate='middle' is not one of",
    ),
    "sequence_length 2": (
        lambda m: hub.DistilBertTextClassifierPreprocessor(m["tokenizer"], 2),
        ValueError,
        "sequence_length must be an integer >= 3",
    ),
    "only_second without a pair": (
        lambda m: hub.DistilBertTextClassifierPreprocessor(m["tokenizer"], 8, truncate="only_second")(["a cat"]),
        ValueError,
        "needs paired inputs",
    ),
    "three segments": (
        lambda m: hub.DistilBertTextClassifierPreprocessor(m["tokenizer"], 8)(("a", "b", "c")),
        ValueError,
        "one or two segments",
    ),
    "a tuple mixing a text and a batch": (
        lambda m: hub.DistilBertTextClassifierPreprocessor(m["tokenizer"], 8)(("a", ["b"])),
        ValueError,
        "all single texts or all batches",
    ),
    "more labels than texts": (
        lambda m: hub.DistilBertTextClassifierPreprocessor(m["tokenizer"], 8)(["a cat"], [0, 1]),
        ValueError,
        "2 labels for 1 inputs",
    ),
    "QA stride past the sequence": (
        lambda m: hub.DistilBertQuestionAnswererPreprocessor(m["tokenizer"], 8, 8),
        ValueError,
        "stride must be an integer in",
    ),
    "QA stride that leaves no room (used to panic in Rust)": (
        lambda m: hub.DistilBertQuestionAnswererPreprocessor(m["tokenizer"], 12, stride=8).windows(
            ["who is the cat ?"], ["the cat sat on the mat " * 5]
        ),
        ValueError,
        "not more than stride=8",
    ),
    "QA answer text that is not in the context": (
        lambda m: hub.DistilBertQuestionAnswererPreprocessor(m["tokenizer"], 12, 2)(
            (["who ?"], ["a cat sat"]), [{"answer_start": 2, "text": "dog"}]
        ),
        ValueError,
        "context 0 holds 'cat' at answer_start=2, not the answer text 'dog'",
    ),
    "QA without a pair": (
        lambda m: hub.DistilBertQuestionAnswererPreprocessor(m["tokenizer"], 12, 2)(["a"]),
        ValueError,
        r"takes x=\(questions, contexts\)",
    ),
    "word labels of the wrong count": (
        lambda m: hub.DistilBertTokenClassifierPreprocessor(m["tokenizer"], 8)([["a", "cat"]], [[0]]),
        ValueError,
        "row 0: 1 labels for 2 words",
    ),
    "a string where words are expected": (
        lambda m: hub.DistilBertTokenClassifierPreprocessor(m["tokenizer"], 8)(["a cat"]),
        TypeError,
        "row 0 must be a list of words",
    ),
    "choices of unequal count": (
        lambda m: hub.DistilBertMultipleChoicePreprocessor(m["tokenizer"], 8)((["a"], [["b", "c"], ["d"]])),
        ValueError,
        "1 prompts but 2 rows of choices",
    ),
    "a choice label past the choices": (
        lambda m: hub.DistilBertMultipleChoicePreprocessor(m["tokenizer"], 8)((["a"], [["b", "c"]]), [2]),
        ValueError,
        r"labels must be choice indices in \[0, 2\)",
    ),
    "raw text without a preprocessor": (
        lambda m: m["tagger"].predict(["a cat"]),
        ValueError,
        "got raw text but has no preprocessor",
    ),
    "a tokenizer of another vocabulary size": (
        lambda m: hub.DistilBertTextClassifier(
            m["backbone"],
            2,
            preprocessor=hub.DistilBertTextClassifierPreprocessor(hub.DistilBertTokenizer(VOCABULARY + ["extra"]), 8),
        ),
        ValueError,
        f"has {V + 1} tokens but the backbone",
    ),
    "a backbone that is not one": (
        lambda m: hub.DistilBertTextClassifier(m["tokenizer"], 2),
        TypeError,
        "backbone must be a DistilBertBackbone",
    ),
    "zero classes": (lambda m: hub.DistilBertTextClassifier(m["backbone"], 0), ValueError, "num_classes must be"),
    "an unknown activation": (
        lambda m: hub.DistilBertBackbone(V, 1, 2, 8, 16, activation="swish"),
        ValueError,
        "activation",
    ),
    "zero layers": (lambda m: hub.DistilBertBackbone(V, 0, 2, 8, 16), ValueError, "num_layers must be a positive"),
    "an empty vocabulary": (
        lambda m: hub.DistilBertBackbone(0, 1, 2, 8, 16),
        ValueError,
        "vocabulary_size must be a positive integer; got 0",
    ),
    "a symbolic input longer than max_sequence_length": (
        lambda m: m["backbone"](
            {name: keras.Input(shape=(9,), dtype="int32") for name in ("token_ids", "padding_mask")}
        ),
        ValueError,
        "input sequence length 9 exceeds max_sequence_length=8",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_TEXT_INPUTS))
def test_bad_text_and_construction_is_refused(models, case):
    run, error, phrase = BAD_TEXT_INPUTS[case]
    with pytest.raises(error, match=phrase):
        run(models)


def test_a_keras_archive_cannot_read_a_local_file(models, tmp_path):
    classifier = hub.DistilBertTextClassifier(  # uncompiled: no half-built optimizer state to save
        models["backbone"], num_classes=2, preprocessor=models["classifier"].preprocessor
    )
    path = tmp_path / "model.keras"
    classifier.save(path)
    secret = tmp_path / "secret.txt"
    secret.write_text("\n".join(VOCABULARY))
    import zipfile

    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    config["config"]["preprocessor"]["config"]["tokenizer"]["config"]["vocabulary"] = str(secret)
    files["config.json"] = json.dumps(config).encode()
    tampered = tmp_path / "tampered.keras"
    with zipfile.ZipFile(tampered, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    with pytest.raises(ValueError, match="cannot be loaded with safe_mode=True"):
        keras.saving.load_model(tampered)


def test_the_suite_has_at_least_100_cases():
    count = len(BAD_MODEL_INPUTS) * len(ENTRY_POINTS) + len(BAD_TRAINING) + len(BAD_TEXT_INPUTS) + 1
    assert count >= 100, count


@settings(max_examples=40, deadline=None)
@given(
    dtype=st.sampled_from(["int32", "int64", "uint8", "float32", "float64", "bool"]),
    shape=st.lists(st.integers(0, 9), min_size=1, max_size=3),
    low=st.integers(-3, V + 3),
    data=st.data(),
)
def test_arbitrary_arrays_give_finite_outputs_or_a_library_error(models, dtype, shape, low, data):
    """Whatever array comes in: finite outputs, or a ValueError/TypeError
    naming the model, never NaN from finite weights or an internal error."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    ids = (rng.integers(low, low + 5, size=shape) + (0.5 if dtype.startswith("float") and low % 2 else 0)).astype(dtype)
    mask = rng.integers(0, 2, size=shape).astype(data.draw(st.sampled_from(["int32", "bool", "float32"])))
    try:
        output = models["backbone"]({"token_ids": ids, "padding_mask": mask})
    except (ValueError, TypeError) as error:
        assert "DistilBertBackbone" in str(error), f"unnamed error for ids {ids!r}, mask {mask!r}: {error}"
        return
    assert np.isfinite(keras.ops.convert_to_numpy(output)).all(), f"non-finite output for {ids!r}, {mask!r}"


def test_a_bad_batch_mid_training_leaves_the_model_whole(models):
    """On jax Keras detaches the weights during fit; a batch refused on the
    way must not leave the model without them."""
    classifier = models["classifier"]
    before = [keras.ops.convert_to_numpy(v) for v in classifier.backbone.weights]
    good, bad = (LABELLED, np.array([0, 1])), (LABELLED, np.array([0, 9]))
    with pytest.raises(ValueError, match="label 9"):
        classifier.fit((b for b in [good, good, bad]), steps_per_epoch=3, verbose=0)
    after = [keras.ops.convert_to_numpy(v) for v in classifier.backbone.weights]
    assert all(a.shape == b.shape and np.isfinite(a).all() for a, b in zip(after, before))
    assert classifier.predict(LABELLED, verbose=0).shape == (2, 3)
