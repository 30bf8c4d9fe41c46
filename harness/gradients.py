"""The loss and the gradient of every trainable variable, on any backend.

`loss_and_gradients` takes the loss the way `fit` does: the model's compiled
loss (`compute_loss`, so loss weights and reductions are the user's), on the
outputs of a call with `training=True`. jax differentiates Keras'
`compute_loss_and_updates` (what its train step differentiates),
tensorflow records a `GradientTape`, torch runs autograd.

`hf_gradients` names the gradients as transformers names its parameters,
through the converter's weight map (Dense kernels transposed back to torch's
`[out, in]`); a tied variable is one Keras variable and so one gradient.
"""

import keras
import numpy as np

from distilbert_hub.convert.hf_weights import WeightEntry, backbone_weight_map, task_weight_map
from distilbert_hub.distilbert_backbone import DistilBertBackbone

IGNORED = -100  # transformers' label for a position without a loss


def loss_and_gradients(model, x, y=None, sample_weight=None):
    """(loss as a float, {id(variable): gradient as numpy}) for `model`, compiled."""
    backend = keras.backend.backend()
    variables = model.trainable_variables
    if backend == "jax":
        import jax

        if not model.optimizer.built:
            model.optimizer.build(variables)

        def loss_of(trainable_values):
            loss, _ = model.compute_loss_and_updates(
                trainable_values,
                [v.value for v in model.non_trainable_variables],
                [v.value for v in model.metrics_variables],
                x,
                y,
                sample_weight,
                training=True,
                optimizer_variables=[v.value for v in model.optimizer.variables],
            )
            return loss

        loss, grads = jax.value_and_grad(loss_of)([v.value for v in variables])
    elif backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = model.compute_loss(x, y, model(x, training=True), sample_weight, training=True)
        grads = tape.gradient(loss, variables)
    elif backend == "torch":
        import torch

        loss = model.compute_loss(x, y, model(x, training=True), sample_weight, training=True)
        grads = torch.autograd.grad(loss, [v.value for v in variables], allow_unused=True)
    else:
        raise ValueError(f"no gradient runner for backend '{backend}'")
    gradients = {
        id(v): np.zeros(v.shape, np.float32) if g is None else keras.ops.convert_to_numpy(g).astype(np.float32)
        for v, g in zip(variables, grads)
    }
    return float(keras.ops.convert_to_numpy(loss)), gradients


def hf_weight_entries(model):
    """The converter's weight map of a backbone or task, plus each LoRA
    layer's matrices as PEFT names them (`<linear>.lora_A.weight` `[r, in]`,
    `<linear>.lora_B.weight` `[out, r]`: Keras' `[in, r]`, `[r, out]`
    transposed)."""
    backbone = model if isinstance(model, DistilBertBackbone) else model.backbone
    entries = backbone_weight_map(model) if model is backbone else task_weight_map(model)
    by_bias = {id(e.variable): e.hf_name.removesuffix(".bias") for e in entries if e.hf_name.endswith(".bias")}
    for layer in backbone.lora_layers():
        linear = by_bias[id(layer.bias)]
        entries += [
            WeightEntry(f"{linear}.lora_A.weight", layer.lora_kernel_a, transpose=True),
            WeightEntry(f"{linear}.lora_B.weight", layer.lora_kernel_b, transpose=True),
        ]
    return entries


def hf_gradients(model, gradients):
    """`{hf name: gradient}` for the variables of `model` that have a gradient."""
    named = {}
    for entry in hf_weight_entries(model):
        gradient = gradients.get(id(entry.variable))
        if gradient is not None:
            named[entry.hf_name] = gradient.T if entry.transpose else gradient
    return named


class ProbeLoss(keras.losses.Loss):
    """sum(y_pred * y_true): with `y_true` a fixed tensor that is zero on
    padding, a scalar that every hidden value on a real token moves."""

    def __init__(self, **kwargs):
        super().__init__(reduction="sum", **kwargs)

    def call(self, y_true, y_pred):
        return keras.ops.sum(keras.ops.cast(y_true, y_pred.dtype) * y_pred, axis=-1)


def training_batch(golden):
    """(x, y, sample_weight) of a gradients golden, as this library takes
    them: transformers' -100 labels become sample weight 0; the masked LM's
    `[batch, length]` labels become `mask_positions` and labels there."""
    inputs, head = golden.inputs, golden.provenance["head"]
    x = {"token_ids": inputs["token_ids"], "padding_mask": inputs["padding_mask"]}
    if head == "backbone":
        return x, inputs["probe"] * inputs["padding_mask"][..., None], None
    if head == "question_answerer":
        return x, {"start_logits": inputs["start_positions"], "end_logits": inputs["end_positions"]}, None
    labels = inputs["labels"]
    if head == "token_classifier":
        return x, np.where(labels == IGNORED, 0, labels), (labels != IGNORED).astype(np.float32)
    if head == "masked_lm":
        rows = [np.flatnonzero(row != IGNORED) for row in labels]
        width = max(len(r) for r in rows)
        positions = np.zeros((len(rows), width), np.int32)
        weights = np.zeros((len(rows), width), np.float32)
        for i, row in enumerate(rows):
            positions[i, : len(row)], weights[i, : len(row)] = row, 1.0
        y = np.take_along_axis(np.where(labels == IGNORED, 0, labels), positions, axis=1)
        return x | {"mask_positions": positions}, y, weights
    return x, labels, None


def model_from_golden(golden, quantize=None):
    """The golden's backbone or task, compiled; a LoRA case gets its
    updates (on a base quantized to `quantize` first, for QLoRA)."""
    import dataclasses
    import json

    from harness.runner import backbone_from_golden, task_from_golden

    lora = json.loads(golden.provenance.get("lora", "null"))
    base = dataclasses.replace(golden, weights={k: v for k, v in golden.weights.items() if ".lora_" not in k})
    is_backbone = golden.provenance["head"] == "backbone"
    model = backbone_from_golden(base) if is_backbone else task_from_golden(base)
    if quantize:
        (model if is_backbone else model.backbone).quantize(quantize)
    if lora:
        model.enable_lora(lora["rank"], lora["targets"], lora_alpha=lora["alpha"])
        for entry in hf_weight_entries(model):
            if ".lora_" in entry.hf_name:
                entry.variable.assign(golden.weights[entry.hf_name].T)
    model.compile(loss=ProbeLoss()) if is_backbone else model.compile()  # compile defaults: the loss users get
    return model


def run_gradients_case(golden, model=None):
    model = model or model_from_golden(golden)
    loss, gradients = loss_and_gradients(model, *training_batch(golden))
    named = hf_gradients(model, gradients)
    return {"loss": np.asarray(loss, np.float32)} | {f"gradients/{name}": g for name, g in named.items()}
