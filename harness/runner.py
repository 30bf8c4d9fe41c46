"""Run a golden case through this library on the current Keras backend.

Models are built from the golden's Hugging Face config and get the golden's
weights through the same name mapping the checkpoint converter uses.
"""

import keras
import numpy as np

from distilbert_hub.convert.hf_config import backbone_kwargs_from_hf_config
from distilbert_hub.convert.hf_weights import assign_hf_weights, backbone_weight_map
from distilbert_hub.distilbert_backbone import DistilBertBackbone
from harness.compare import compare


def backbone_from_golden(golden, backbone_cls=DistilBertBackbone):
    kwargs = backbone_kwargs_from_hf_config(golden.config, source=golden.case_id)
    backbone = backbone_cls(**kwargs)
    assign_hf_weights(backbone_weight_map(backbone), golden.weights, source=golden.case_id)
    return backbone


def model_inputs(golden):
    return {
        "token_ids": golden.inputs["token_ids"],
        "padding_mask": golden.inputs["padding_mask"],
    }


def run_backbone_case(golden, backbone=None):
    backbone = backbone or backbone_from_golden(golden)
    hidden_states = backbone.hidden_states_model()(model_inputs(golden), training=False)
    return {
        f"hidden_states/{i:02d}": keras.ops.convert_to_numpy(state)
        for i, state in enumerate(hidden_states)
    }


RUNNERS = {"backbone": run_backbone_case}


def run_case(golden):
    if golden.kind not in RUNNERS:
        raise ValueError(f"case '{golden.case_id}': no runner for kind '{golden.kind}'.")
    return RUNNERS[golden.kind](golden)


def compare_outputs(golden, actual_outputs, backend=None):
    """One `Comparison` per golden output; an output the run lacks is a failure."""
    backend = backend or keras.backend.backend()
    comparisons = []
    for name, expected in sorted(golden.outputs.items()):
        mask = golden.inputs[expected.real_token_mask] if expected.real_token_mask else None
        actual = actual_outputs.get(name)
        comparison = compare(
            actual if actual is not None else np.empty((0,)),
            expected.value,
            atol=expected.atol,
            rtol=expected.rtol,
            tolerance_reason=expected.tolerance_reason,
            case_id=golden.case_id,
            output=name,
            backend=backend,
            real_token_mask=mask,
        )
        if actual is None:
            comparison.problem = "the model produced no such output"
        comparisons.append(comparison)
    return comparisons
