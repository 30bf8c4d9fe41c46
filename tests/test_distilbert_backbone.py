"""DistilBertBackbone: its goldens, config, presets, names and errors."""

import keras
import numpy as np
import pytest

from distilbert_hub import DistilBertBackbone
from distilbert_hub.layers.distilbert_embedding import sinusoidal_position_table
from harness.golden import case_ids, load_case
from harness.testing import ModelTestCase, record_calls


class TestDistilBertBackbone(ModelTestCase):
    @pytest.mark.parametrize("case_id", case_ids(kind="backbone"))
    def test_hidden_states_match_transformers(self, case_id):
        """Every backbone golden, every layer's hidden states, on this backend."""
        comparisons = self.run_golden_case(case_id)
        assert any(c.output.endswith("/00") for c in comparisons)

    def test_backbone_basics(self, tiny_backbone_kwargs, token_inputs, tmp_path):
        self.run_model_test(DistilBertBackbone, tiny_backbone_kwargs, token_inputs, (2, 7, 8), tmp_path)

    @pytest.mark.parametrize(
        "variant", [{"activation": "relu"}, {"sinusoidal_position_embedding": True, "attention_dropout": 0.0}]
    )
    def test_config_variants(self, tiny_backbone_kwargs, token_inputs, tmp_path, variant):
        self.run_model_test(DistilBertBackbone, tiny_backbone_kwargs | variant, token_inputs, (2, 7, 8), tmp_path)

    def test_every_layer_norm_has_distilberts_epsilon(self, tiny_tokenizer):
        self.run_layer_norm_epsilon_test("backbone", tiny_tokenizer)

    def test_hidden_states_model_returns_every_layer(self, tiny_backbone_kwargs, token_inputs):
        backbone = DistilBertBackbone(**tiny_backbone_kwargs)
        states = backbone.hidden_states_model()(token_inputs)
        assert len(states) == tiny_backbone_kwargs["num_layers"] + 1
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(states[-1]), keras.ops.convert_to_numpy(backbone(token_inputs))
        )
        assert backbone.hidden_states_model().name == f"{backbone.name}_hidden_states"

    def test_from_preset_without_weights_keeps_the_config_only(self, tiny_backbone_kwargs, tmp_path):
        saved = DistilBertBackbone(**tiny_backbone_kwargs)
        saved.save_to_preset(tmp_path / "preset")
        fresh = DistilBertBackbone.from_preset(tmp_path / "preset", load_weights=False)
        assert fresh.get_config() == saved.get_config()
        loaded = DistilBertBackbone.from_preset(tmp_path / "preset")
        for kept, drawn, variable in zip(loaded.get_weights(), fresh.get_weights(), saved.weights):
            if np.std(kept) > 0:  # drawn at random, not a constant like zeros or ones
                assert not np.array_equal(kept, drawn), f"{variable.path} was loaded with load_weights=False"
        keras.tree.map_structure(np.testing.assert_array_equal, loaded.get_weights(), saved.get_weights())

    def test_from_preset_draws_no_weight_it_overwrites(self, tiny_backbone_kwargs, tmp_path, monkeypatch):
        """Drawing the truncated normals first costs about 2 s of a full-size load."""
        DistilBertBackbone(**tiny_backbone_kwargs).save_to_preset(tmp_path / "preset")
        draws = record_calls(monkeypatch, keras.initializers.TruncatedNormal, "__call__")
        DistilBertBackbone.from_preset(tmp_path / "preset")
        assert not draws, f"{len(draws)} weights drawn, then overwritten"
        DistilBertBackbone.from_preset(tmp_path / "preset", load_weights=False)
        assert draws

    def test_sinusoidal_table_equals_transformers(self):
        case_id = next(i for i in case_ids(kind="backbone") if "sinusoidal" in i)
        golden = load_case(case_id)
        expected = golden.weights["embeddings.position_embeddings.weight"]
        np.testing.assert_array_equal(sinusoidal_position_table(*expected.shape), expected)
        backbone = DistilBertBackbone(
            vocabulary_size=golden.config["vocab_size"],
            num_layers=1,
            num_heads=golden.config["n_heads"],
            hidden_dim=golden.config["dim"],
            intermediate_dim=8,
            max_sequence_length=golden.config["max_position_embeddings"],
            sinusoidal_position_embedding=True,
        )
        position = backbone.embeddings.position_embedding
        assert not position.trainable
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(position), expected)

    @pytest.mark.parametrize("entry", ["call", "predict"])
    @pytest.mark.parametrize(
        "bad, message",
        [
            ({"token_ids": [[3, 50]]}, "token id 50 at index (0, 1) is outside [0, vocabulary_size=50)"),
            ({"token_ids": [[-1, 2]]}, "token id -1 at index (0, 0)"),
            ({"token_ids": [[1, 2, 3]], "padding_mask": [[1, 1]]}, "'padding_mask' has shape (1, 2)"),
            ({"token_ids": [[1] * 13]}, "sequence length 13 exceeds max_sequence_length=12"),
        ],
    )
    def test_bad_inputs_raise_clear_errors(self, tiny_backbone_kwargs, bad, message, entry):
        backbone = DistilBertBackbone(**tiny_backbone_kwargs)
        token_ids = np.asarray(bad["token_ids"], dtype="int32")
        padding_mask = np.asarray(bad.get("padding_mask", np.ones_like(token_ids)), dtype="int32")
        inputs = {"token_ids": token_ids, "padding_mask": padding_mask}
        with pytest.raises(ValueError) as error:
            backbone(inputs) if entry == "call" else backbone.predict(inputs, verbose=0)
        assert message in str(error.value)

    def test_backend_tensor_ids_are_checked(self, tiny_backbone_kwargs):
        backbone = DistilBertBackbone(**tiny_backbone_kwargs)
        token_ids = keras.ops.convert_to_tensor(np.array([[1, 99]], dtype="int32"))
        with pytest.raises(ValueError, match="token id 99"):
            backbone({"token_ids": token_ids, "padding_mask": keras.ops.ones_like(token_ids)})

    @pytest.mark.parametrize(
        "override, message",
        [
            ({"num_heads": 3}, "num_heads=3 must divide hidden_dim=8"),
            ({"activation": "gelu_new"}, "activation='gelu_new' is not supported"),
            ({"num_layers": 0}, "num_layers must be a positive integer"),
            ({"num_heads": 0}, "num_heads must be a positive integer"),
            ({"hidden_dim": -8}, "hidden_dim must be a positive integer"),
            ({"intermediate_dim": 0}, "intermediate_dim must be a positive integer"),
            ({"max_sequence_length": 0}, "max_sequence_length must be a positive integer"),
            ({"hidden_dim": 7, "num_heads": 1, "sinusoidal_position_embedding": True}, "needs an even hidden_dim"),
        ],
    )
    def test_bad_config_raises(self, tiny_backbone_kwargs, override, message):
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            DistilBertBackbone(**(tiny_backbone_kwargs | override))

    def test_defaults_are_keras_hubs(self):
        """KerasHub's DistilBertBackbone defaults: 512 positions, dropout 0.1."""
        config = DistilBertBackbone(vocabulary_size=10, num_layers=1, num_heads=2, hidden_dim=4, intermediate_dim=8)
        config = config.get_config()
        assert (config["max_sequence_length"], config["dropout"]) == (512, 0.1)

    def test_a_one_token_sequence_warns_nothing(self, tiny_backbone_kwargs):
        """Keras warns on a softmax over one element; one key is a valid
        sequence here, and the attention silences exactly that warning."""
        import warnings

        backbone = DistilBertBackbone(**tiny_backbone_kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            backbone({"token_ids": np.array([[5]], "int32"), "padding_mask": np.array([[1]], "int32")})


# Saved LoRA files and `get_layout_map` key on these paths, and users reach
# layers by these names: they are part of the interface.
BLOCK_WEIGHTS = [
    "attention/query/kernel", "attention/query/bias", "attention/key/kernel", "attention/key/bias",
    "attention/value/kernel", "attention/value/bias", "attention/attention_output/kernel",
    "attention/attention_output/bias", "attention_layer_norm/gamma", "attention_layer_norm/beta",
    "intermediate/kernel", "intermediate/bias", "output/kernel", "output/bias",
    "output_layer_norm/gamma", "output_layer_norm/beta",
]  # fmt: skip


def test_weight_paths_and_layer_names_are_stable(tiny_backbone_kwargs):
    backbone = DistilBertBackbone(**tiny_backbone_kwargs)
    expected = {"embeddings/token_embedding", "embeddings/position_embedding"}
    expected |= {"embeddings/layer_norm/gamma", "embeddings/layer_norm/beta"}
    expected |= {f"transformer_layer_{i}/{path}" for i in range(backbone.num_layers) for path in BLOCK_WEIGHTS}
    assert sorted(v.path for v in backbone.weights) == sorted(expected)
    names = [layer.name for layer in backbone.embeddings._flatten_layers(include_self=False)]
    assert sorted(names) == ["dropout", "layer_norm"]
    block = backbone.transformer_layers[0]
    assert sorted(layer.name for layer in block._flatten_layers(include_self=False)) == sorted(
        ["attention", "query", "key", "value", "attention_output", "attention_dropout"]
        + ["attention_layer_norm", "intermediate", "output", "output_dropout", "output_layer_norm"]
    )


def test_layers_built_alone_take_their_documented_defaults():
    from distilbert_hub.layers.distilbert_attention import DistilBertAttention
    from distilbert_hub.layers.distilbert_embedding import DistilBertEmbedding
    from distilbert_hub.layers.distilbert_transformer_layer import DistilBertTransformerLayer

    block = DistilBertTransformerLayer(num_heads=2, hidden_dim=8, intermediate_dim=16).get_config()
    assert (block["dropout"], block["attention_dropout"], block["activation"]) == (0.0, 0.0, "gelu")
    assert DistilBertAttention(num_heads=2, hidden_dim=8).get_config()["dropout"] == 0.0
    embedding = DistilBertEmbedding(vocabulary_size=10, max_sequence_length=4, hidden_dim=8).get_config()
    assert (embedding["dropout"], embedding["sinusoidal_position_embedding"]) == (0.0, False)


def test_the_dropout_rates_reach_every_dropout_layer(tiny_backbone_kwargs):
    backbone = DistilBertBackbone(**tiny_backbone_kwargs, dropout=0.15, attention_dropout=0.25)
    rates = {
        layer.name: layer.rate
        for layer in backbone._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.Dropout)
    }
    assert rates == {"dropout": 0.15, "output_dropout": 0.15, "attention_dropout": 0.25}, rates
