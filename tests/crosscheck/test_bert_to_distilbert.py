"""tools/bert_to_distilbert.py: a seeded BertModel (token types all 0) and
the DistilBertModel of its converted checkpoint give the same hidden states
in transformers; our DistilBertTextEmbedder on that checkpoint gives
sentence-transformers' mean pooling of BertModel's states."""

import numpy as np
import pytest
import torch
import transformers

import distilbert_hub as hub
from harness.seeded_weights import seeded_weights
from tools.bert_to_distilbert import convert
from tools.golden_cases import pipelines

TEXTS = ["Angela Merkel met Emmanuel Macron in Zürich.", "東京は日本の首都です。", "ok"]


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    config = transformers.BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=48,
        max_position_embeddings=40,
        attn_implementation="eager",
    )
    model = transformers.BertModel(config).eval()
    shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    model.load_state_dict({k: torch.from_numpy(v) for k, v in seeded_weights(shapes, 11).items()}, strict=False)
    root = tmp_path_factory.mktemp("bert")
    model.save_pretrained(root / "bert")
    pipelines.reference_tokenizer().save_pretrained(root / "bert")
    return model, convert(root / "bert", root / "distilbert")


def test_converted_checkpoint_has_berts_hidden_states(bert):
    model, directory = bert
    distilbert = transformers.DistilBertModel.from_pretrained(directory, attn_implementation="eager").eval()
    batch = pipelines.reference_tokenizer()(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = model(**batch).last_hidden_state.numpy()
        actual = distilbert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    mask = batch["attention_mask"].numpy().astype(bool)
    error = np.abs(actual.numpy() - expected)[mask]
    assert error.max() <= 1e-5, f"max abs error {error.max():.2e} on real tokens"


def test_embedder_matches_mean_pooling_of_bert(bert):
    model, directory = bert
    batch = pipelines.reference_tokenizer()(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        states = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    expected = torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1).clamp(min=1e-9), p=2, dim=1)
    ours = hub.DistilBertTextEmbedder.from_preset(str(directory)).predict(TEXTS, verbose=0)
    assert np.abs(ours - expected.numpy()).max() <= 1e-5


def test_refuses_what_distilbert_cannot_express(bert, tmp_path):
    from tools.bert_to_distilbert import distilbert_config

    with pytest.raises(ValueError, match="layer_norm_eps"):
        distilbert_config({"model_type": "bert", "layer_norm_eps": 1e-5})
    with pytest.raises(ValueError, match="model_type"):
        distilbert_config({"model_type": "roberta"})
