"""Goldens through the inference strategies (`distilbert_hub.inference`):
the outputs each strategy computes, compared at the golden's tolerance."""

import dataclasses

import keras

from distilbert_hub.inference import strategies_on_this_backend
from harness.runner import backbone_from_golden, compare_outputs, model_inputs, task_from_golden


def read_positions(golden, name, strategy):
    """The golden's output `name` as the strategy computes it, under the key
    `name via strategy`: `[:, :1]` of the token axis (and of the mask that
    marks its real tokens) for a first-token strategy. A real-token strategy
    is compared where the golden compares: on its real tokens."""
    expected = golden.outputs[name]
    inputs = dict(golden.inputs)
    if strategy.reads == "first_token" and expected.real_token_mask is not None:
        expected = dataclasses.replace(expected, value=expected.value[:, :1])
        inputs[expected.real_token_mask] = inputs[expected.real_token_mask][:, :1]
    return dataclasses.replace(golden, inputs=inputs, outputs={f"{name} via {strategy!r}": expected})


def compare_backbone_case(golden, strategy, backbone=None):
    """The last hidden state of a backbone golden through `strategy`."""
    backbone = backbone or backbone_from_golden(golden)
    name = f"hidden_states/{backbone.num_layers:02d}"
    with backbone.inference(strategy):
        output = keras.ops.convert_to_numpy(backbone(model_inputs(golden), training=False))
    if strategy.reads == "first_token":
        output = output[:, :1]
    return compare_outputs(read_positions(golden, name, strategy), {f"{name} via {strategy!r}": output})


def compare_head_case(golden, strategy, task=None):
    """Every output of a head golden, the backbone through `strategy`."""
    task = task or task_from_golden(golden)
    with task.backbone.inference(strategy):
        outputs = task(dict(golden.inputs), training=False)
    if not isinstance(outputs, dict):
        outputs = {"logits": outputs}
    comparisons = []
    for name, value in sorted(outputs.items()):
        expected = dataclasses.replace(golden, outputs={f"{name} via {strategy!r}": golden.outputs[name]})
        comparisons += compare_outputs(expected, {f"{name} via {strategy!r}": keras.ops.convert_to_numpy(value)})
    return comparisons


def strategies_for(task_cls=None):
    """The strategies on this backend that apply to a backbone (None: all, the
    first-token ones compared at position 0) or to a task class."""
    every = strategies_on_this_backend()
    if task_cls is None or task_cls.reads == "first_token":
        return every
    return [s for s in every if s.reads != "first_token"]


def int8_kernel_error(golden, reads):
    """The largest difference on real tokens between `TorchKernels`' integer
    GEMM and Keras' own int8 Dense (the reference layers) on an int8-quantized
    golden backbone: no golden is int8, so Keras is the oracle."""
    import numpy as np
    import torch

    from distilbert_hub.inference import TorchKernels

    backbone = backbone_from_golden(golden)
    backbone.quantize("int8")
    x = model_inputs(golden)
    expected = keras.ops.convert_to_numpy(backbone(x, training=False))
    with torch.no_grad(), backbone.inference(TorchKernels(reads)):
        actual = keras.ops.convert_to_numpy(backbone(x, training=False))
    real = x["padding_mask"].astype(bool)
    if reads == "first_token":
        actual, expected, real = actual[:, :1], expected[:, :1], real[:, :1]
    return float(np.abs(actual - expected)[real].max())
