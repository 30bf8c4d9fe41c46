"""The pipeline goldens must catch decoding that is plausibly wrong: label
names in another order, a multi-mask sequence decoded without its special
tokens, entity words joined without the WordPiece decoder, a head a little
off. Each mutation runs the real `from_preset` path and must fail."""

import tempfile
from pathlib import Path

import numpy as np
import pytest

import distilbert_hub as hub
from harness.golden import load_case
from harness.runner import compare_outputs, pipeline_checkpoint, run_pipeline_case


def loaded(case_id, cls):
    golden = load_case(case_id)
    with tempfile.TemporaryDirectory() as directory:
        return golden, cls.from_preset(str(pipeline_checkpoint(golden, Path(directory))))


def failures(golden, task):
    return [c for c in compare_outputs(golden, run_pipeline_case(golden, task)) if not c.passed]


def test_the_unmutated_models_pass():
    for case_id, cls in (("pipeline_text_classification", hub.DistilBertTextClassifier),):
        assert not failures(*loaded(case_id, cls))


def test_labels_in_another_order_fail():
    golden, task = loaded("pipeline_text_classification", hub.DistilBertTextClassifier)
    task.id2label = {"0": task.id2label["1"], "1": task.id2label["0"], "2": task.id2label["2"]}
    assert any(c.output.endswith("structure") for c in failures(golden, task))


def test_a_slightly_wrong_head_fails():
    golden, task = loaded("pipeline_token_classification", hub.DistilBertTokenClassifier)
    kernel = np.asarray(task.output_dense.kernel.numpy())
    task.output_dense.kernel.assign(kernel * 1.001)
    assert any(c.output.endswith("scores") for c in failures(golden, task))


def test_multi_mask_sequences_keep_special_tokens(monkeypatch):
    golden, task = loaded("pipeline_fill_mask", hub.DistilBertMaskedLM)
    tokenizer = task.preprocessor.tokenizer
    original = tokenizer.detokenize
    monkeypatch.setattr(tokenizer, "detokenize", lambda ids, skip_special_tokens=False: original(ids, True))
    assert any(c.output.endswith("structure") for c in failures(golden, task))


@pytest.mark.parametrize("join", [" ".join, "".join])
def test_entity_words_use_the_wordpiece_decoder(monkeypatch, join):
    golden, task = loaded("pipeline_token_classification", hub.DistilBertTokenClassifier)
    tokenizer = task.preprocessor.tokenizer
    monkeypatch.setattr(tokenizer, "tokens_to_string", lambda tokens: join(tokens))
    assert any(c.output.endswith("structure") for c in failures(golden, task))
