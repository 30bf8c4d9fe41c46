"""Differential test: random tiny configs and inputs, ours vs live transformers."""

import keras
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import DistilBertConfig, DistilBertModel

from distilbert_hub import DistilBertBackbone
from distilbert_hub.convert.hf_config import backbone_kwargs_from_hf_config
from distilbert_hub.convert.hf_weights import assign_hf_weights, backbone_weight_map
from harness import strategies
from harness.compare import assert_all_match, compare
from harness.seeded_weights import seeded_weights


@settings(max_examples=15)
@given(config=strategies.tiny_hf_configs(), seed=strategies.seeds(), data=st.data())
def test_every_hidden_state_matches_transformers(config, seed, data):
    reference = DistilBertModel(DistilBertConfig(attn_implementation="eager", **config)).eval()
    shapes = {name: tuple(t.shape) for name, t in reference.state_dict().items()}
    keep = ("position_embeddings.weight",) if config["sinusoidal_pos_embds"] else ()
    weights = seeded_weights(shapes, seed, keep=keep)
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=False)
    weights = {k: v.detach().numpy() for k, v in reference.state_dict().items()}

    backbone = DistilBertBackbone(**backbone_kwargs_from_hf_config(config))
    assign_hf_weights(backbone_weight_map(backbone), weights)
    inputs = data.draw(strategies.token_batches(config["vocab_size"], config["max_position_embeddings"]))
    with torch.no_grad():
        expected = reference(
            input_ids=torch.from_numpy(inputs["token_ids"]).long(),
            attention_mask=torch.from_numpy(inputs["padding_mask"]).long(),
            output_hidden_states=True,
        ).hidden_states
    actual = backbone.hidden_states_model()(inputs)
    assert_all_match(
        [
            compare(
                keras.ops.convert_to_numpy(a),
                e.numpy(),
                atol=1e-5,
                rtol=0.0,
                tolerance_reason="float32 CPU",
                case_id=f"random config {config}",
                output=f"hidden_states/{i:02d}",
                backend="torch",
                real_token_mask=inputs["padding_mask"],
            )
            for i, (a, e) in enumerate(zip(actual, expected))
        ]
    )
