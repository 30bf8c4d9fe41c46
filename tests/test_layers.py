"""Each layer on its own, as KerasHub tests its layers: shapes, config round
trips, mixed precision, and the errors a layer raises itself."""

import keras
import numpy as np
import pytest

from distilbert_hub.layers import DistilBertAttention, DistilBertEmbedding, DistilBertTransformerLayer
from distilbert_hub.layers.choice_reshape import FlattenChoices, UnflattenChoices
from distilbert_hub.layers.distilbert_masked_lm_head import DistilBertMaskedLMHead
from harness.testing import LayerTestCase

HIDDEN = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")
PADDING_MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], "int32")


def embedding_layer():
    layer = DistilBertEmbedding(vocabulary_size=11, max_sequence_length=6, hidden_dim=8)
    layer.build((None, None))
    return layer


class TestLayers(LayerTestCase):
    def test_embedding(self):
        for sinusoidal in (False, True):
            self.run_layer_test(
                DistilBertEmbedding,
                {
                    "vocabulary_size": 11,
                    "max_sequence_length": 6,
                    "hidden_dim": 8,
                    "dropout": 0.1,
                    "sinusoidal_position_embedding": sinusoidal,
                },
                (np.array([[1, 2, 3, 4, 5]], "int32"),),
                (1, 5, 8),
            )

    def test_attention(self):
        self.run_layer_test(
            DistilBertAttention, {"num_heads": 2, "hidden_dim": 8, "dropout": 0.1}, (HIDDEN, PADDING_MASK), (2, 5, 8)
        )

    def test_transformer_layer(self):
        for activation in ("gelu", "relu"):
            self.run_layer_test(
                DistilBertTransformerLayer,
                {
                    "num_heads": 2,
                    "hidden_dim": 8,
                    "intermediate_dim": 16,
                    "dropout": 0.1,
                    "attention_dropout": 0.2,
                    "activation": activation,
                },
                (HIDDEN, PADDING_MASK),
                (2, 5, 8),
            )

    def test_masked_lm_head(self):
        layer = self.run_layer_test(
            DistilBertMaskedLMHead,
            {"vocabulary_size": 11, "hidden_dim": 8, "activation": "relu"},
            (HIDDEN, np.array([[0, 3], [1, 2]], "int32")),
            (2, 2, 11),
            extra_init_kwargs={"embedding_layer": embedding_layer()},
        )
        # transformers initializes vocab_projector.bias to zeros
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.bias), np.zeros(11, "float32"))

    def test_choice_reshapes(self):
        token_ids = np.arange(2 * 3 * 4).reshape(2, 3, 4)
        flat = FlattenChoices()(token_ids)
        assert tuple(flat.shape) == (6, 4) and FlattenChoices().compute_output_shape((2, 3, 4)) == (None, 4)
        scores = UnflattenChoices()(np.arange(6.0).reshape(6, 1), token_ids)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(scores), np.arange(6.0).reshape(2, 3))
        assert UnflattenChoices().compute_output_shape((6, 1), (2, 3, 4)) == (2, 3)


def test_the_embedding_refuses_a_sequence_longer_than_its_positions():
    with pytest.raises(ValueError, match="Input sequence length 7 exceeds max_sequence_length=6"):
        embedding_layer()(np.ones((1, 7), "int32"))


def test_the_masked_lm_head_needs_the_embedding_it_ties_to():
    head = DistilBertMaskedLMHead(vocabulary_size=11, hidden_dim=8)
    with pytest.raises(ValueError, match="needs the backbone's embedding layer to tie weights"):
        head(HIDDEN, np.array([[0], [1]], "int32"))


def test_sinusoidal_positions_are_transformers_table():
    from distilbert_hub.layers.distilbert_embedding import sinusoidal_position_table

    # transformers' create_sinusoidal_embeddings, written out: angle(pos, j) =
    # pos / 10000^(2 (j // 2) / dim); sin on even columns, cos on odd ones.
    positions, dim = 7, 6
    angles = np.array([[p / np.power(10000, 2 * (j // 2) / dim) for j in range(dim)] for p in range(positions)])
    expected = np.where(np.arange(dim) % 2 == 0, np.sin(angles), np.cos(angles))
    np.testing.assert_allclose(sinusoidal_position_table(positions, dim), expected, atol=1e-7)
