"""Gradient cases: the loss and the gradient of every parameter (HF names), by
torch autograd, for the backbone under a fixed scalar function of its output
and for each `DistilBertFor*` with transformers' own loss given labels.

Every dropout of the config is 0, so the gradient is a function of the
weights and inputs alone. The masked LM's projection is tied to the word
embeddings: torch holds one parameter, `named_parameters` names it once
(`distilbert.embeddings.word_embeddings.weight`), and its gradient is the sum
of both uses.
"""

import json
import math
import re

import numpy as np

from harness.golden import GRADIENT_RELATIVE_TOLERANCE, Golden, GoldenOutput
from tools.golden_cases import register, seed_for
from tools.golden_cases.backbone import SMALL_NORM_CONFIGS, hf_config_dict
from tools.golden_cases.head_table import TIED_WEIGHTS, hf_heads
from tools.golden_cases.heads import CONFIG, HEADS
from tools.golden_cases.reference import deterministic_torch, padded_token_ids, seeded_state_dict

NO_DROPOUT = dict(dropout=0.0, attention_dropout=0.0, seq_classif_dropout=0.0, qa_dropout=0.0)
IGNORED = -100  # transformers' label for a position without a loss

# Norm-relative: each gradient output's atol is GRADIENT_RELATIVE_TOLERANCE
# times the L2 norm of that gradient tensor, so one number reads the same on a
# bias of norm 1e-3 and a word embedding of norm 10.
GRADIENT_REASON = (
    "norm-relative: atol = 1e-5 x the L2 norm of this gradient tensor; float32 rounding alone gives up to "
    "1.7e-6 of the norm between torch float32 and float64 on these cases, and up to 2.7e-6 between "
    "transformers and this library on jax, tensorflow and torch (measured, CPU: AMD EPYC)"
)
LOSS_ATOL, LOSS_RTOL = 1e-5, 2e-6
LOSS_REASON = (
    "float32 on CPU: the same sum in another order; the backbone's probe loss is a sum of ~500 products "
    "(|loss| ~ 10-100), where rounding reaches ~1e-6 of it (measured)"
)

# Rows of 10 tokens: a full one, a padded one, a one-token one.
LENGTHS, SEQUENCE_LENGTH = [10, 6, 1], 10
# The masked positions of the masked LM rows; every other slot is -100.
MASKED_POSITIONS = [[1, 4, 9], [0, 2, 5], [0]]


# Biases whose gradient is zero in exact arithmetic, so the golden holds only
# rounding noise: a softmax is unchanged by adding one constant to all its
# inputs, and these biases add one constant per softmax (the key bias to every
# score of a query's row; the QA start/end bias to every position; the
# multiple-choice bias to every choice; the question answerer's last LayerNorm
# bias adds w.b to every position's logit). Their tolerance is relative to the
# gradient norm of the same layer's weight, the scale their rounding noise has.
SHIFT_INVARIANT_BIASES = {
    None: r"attention\.k_lin\.bias$",
    "question_answerer": r"attention\.k_lin\.bias$|^qa_outputs\.bias$|layer\.{last}\.output_layer_norm\.bias$",
    "multiple_choice": r"attention\.k_lin\.bias$|^classifier\.bias$",
}
SHIFT_INVARIANT_REASON = (
    "zero in exact arithmetic (a softmax ignores a constant added to all its inputs): the golden is rounding "
    "noise; atol = 1e-5 x the L2 norm of the gradient of this layer's weight"
)


def gradient_outputs(model, head):
    """`gradients/<hf name>` for every parameter with a gradient."""
    grads = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        if parameter.grad is None:
            raise RuntimeError(f"parameter '{name}' got no gradient: the case does not reach it.")
        grads[name.replace(".base.", ".").replace(".lora_A", ".lora_A.weight").replace(".lora_B", ".lora_B.weight")] = (
            parameter.grad.detach().numpy().astype(np.float32)
        )
    invariant = re.compile(
        SHIFT_INVARIANT_BIASES.get(head, SHIFT_INVARIANT_BIASES[None]).format(last=model.config.n_layers - 1)
    )
    outputs = {}
    for name, value in grads.items():
        reason, scale = GRADIENT_REASON, value
        if invariant.search(name):
            reason, scale = SHIFT_INVARIANT_REASON, grads[name.replace(".bias", ".weight")]
        # math.fsum is exactly rounded: numpy's float64 norm sums in an order
        # that depends on the CPU's SIMD width, which moved the atol's last
        # bit between AVX2 and AVX-512 machines and failed --check.
        norm = math.sqrt(math.fsum(np.square(scale.astype(np.float64)).ravel().tolist()))
        outputs[f"gradients/{name}"] = GoldenOutput(
            value, atol=GRADIENT_RELATIVE_TOLERANCE * norm, rtol=0.0, tolerance_reason=reason
        )
    return outputs


def labels_for(head, rng, token_ids, padding_mask, config):
    """transformers' keyword arguments holding the labels of `head`."""

    batch = token_ids.shape[0]
    if head == "text_classifier":
        return {"labels": rng.integers(0, config.num_labels, batch)}
    if head == "multiple_choice":
        return {"labels": rng.integers(0, token_ids.shape[1], batch)}
    if head == "question_answerer":
        lengths = padding_mask.sum(-1)
        return {
            "start_positions": np.array([rng.integers(0, n) for n in lengths]),
            "end_positions": np.array([rng.integers(0, n) for n in lengths]),
        }
    if head == "token_classifier":
        labels = np.where(padding_mask > 0, rng.integers(0, config.num_labels, token_ids.shape), IGNORED)
        labels[0, [3, 7]] = IGNORED  # word pieces after a word's first: no loss, as the preprocessor writes
        return {"labels": labels}
    if head == "masked_lm":
        labels = np.full(token_ids.shape, IGNORED)
        for row, positions in enumerate(MASKED_POSITIONS):
            labels[row, positions] = rng.integers(1, config.vocab_size, len(positions))
        return {"labels": labels}
    raise ValueError(f"no labels for head '{head}'")


# LoRA cases: rank 2 on the query and value projections, alpha 4 (scale 2,
# so an update scaled twice or not at all shows). A and B are both drawn
# (a zero B, PEFT's start, would give A no gradient).
LORA = dict(rank=2, alpha=4.0, targets={"query": "q_lin", "value": "v_lin"})


def lora_linear(linear, rng, rank, alpha):
    """The reference LoRA formula on a frozen `nn.Linear`: y = x (W + (alpha/r) B A)^T + b."""
    import torch

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.base = linear
            out_features, in_features = linear.weight.shape
            self.lora_A = torch.nn.Parameter(torch.from_numpy(rng.normal(0, 0.3, (rank, in_features)).astype("f")))
            self.lora_B = torch.nn.Parameter(torch.from_numpy(rng.normal(0, 0.3, (out_features, rank)).astype("f")))

        def forward(self, x):
            weight = self.base.weight + (alpha / rank) * self.lora_B @ self.lora_A
            return torch.nn.functional.linear(x, weight, self.base.bias)

    return Wrapped()


def add_lora(model, prefix, rng):
    """Freeze every parameter, wrap the LORA targets; return the LoRA weights by name."""
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    lora_weights = {}
    for i, block in enumerate(model.get_submodule(prefix + "transformer.layer")):
        for hf_name in LORA["targets"].values():
            wrapped = lora_linear(getattr(block.attention, hf_name), rng, LORA["rank"], LORA["alpha"])
            setattr(block.attention, hf_name, wrapped)
            name = f"{prefix}transformer.layer.{i}.attention.{hf_name}"
            lora_weights[f"{name}.lora_A.weight"] = wrapped.lora_A.detach().numpy().copy()
            lora_weights[f"{name}.lora_B.weight"] = wrapped.lora_B.detach().numpy().copy()
    return lora_weights


def build_gradients_case(case, head=None, small_norms=None, lora=False):
    """`head` None: the backbone, with the loss sum(last_hidden_state * probe)
    over real tokens for a seeded `probe`; else that head's transformers loss."""
    import torch
    import transformers
    from transformers import DistilBertConfig

    class_name, extra = HEADS[head] if head else (hf_heads.BACKBONE_ARCHITECTURE, {})
    config = DistilBertConfig(attn_implementation="eager", **CONFIG, **extra, **NO_DROPOUT)
    deterministic_torch()
    model = getattr(transformers, class_name)(config).eval()
    weights = seeded_state_dict(model, seed_for(f"{case.case_id}/weights"), keep=TIED_WEIGHTS, small_norms=small_norms)
    rng = np.random.default_rng(case.seed)
    provenance = {"head": head or "backbone", "hf_class": class_name}
    if lora:
        prefix = "" if head is None else "distilbert."
        weights |= add_lora(model, prefix, np.random.default_rng(seed_for(f"{case.case_id}/lora")))
        for name, parameter in model.named_parameters():  # a task's head trains beside the updates
            parameter.requires_grad_(".lora_" in name or (head is not None and not name.startswith(prefix)))
        provenance["lora"] = json.dumps(LORA | {"targets": sorted(LORA["targets"])})
    if head == "multiple_choice":
        ids, mask = padded_token_ids(rng, config.vocab_size, [9, 4, 7, 9, 1, 6], 9)
        ids, mask = ids.reshape(2, 3, 9), mask.reshape(2, 3, 9)
    else:
        ids, mask = padded_token_ids(rng, config.vocab_size, LENGTHS, SEQUENCE_LENGTH)
    inputs = {"token_ids": ids, "padding_mask": mask}
    arguments = dict(input_ids=torch.from_numpy(ids).long(), attention_mask=torch.from_numpy(mask).long())
    if head is None:
        probe = rng.standard_normal((*ids.shape, config.dim)).astype(np.float32)
        inputs["probe"] = probe
        hidden = model(**arguments).last_hidden_state
        loss = (hidden * torch.from_numpy(probe) * torch.from_numpy(mask)[..., None]).sum()
    else:
        labels = labels_for(head, rng, ids, mask, config)
        inputs |= {name: value.astype(np.int32) for name, value in labels.items()}
        loss = model(**arguments, **{k: torch.from_numpy(v).long() for k, v in labels.items()}).loss
    loss.backward()
    outputs = gradient_outputs(model, head)
    outputs["loss"] = GoldenOutput(
        np.asarray(loss.item(), np.float32), atol=LOSS_ATOL, rtol=LOSS_RTOL, tolerance_reason=LOSS_REASON
    )
    return Golden(
        case_id=case.case_id,
        kind=case.kind,
        provenance=provenance,
        config=hf_config_dict(config),
        inputs=inputs,
        outputs=outputs,
        weights=weights,
    )


register("gradients_backbone", "gradients", lambda case: build_gradients_case(case))
# LayerNorms drawn small (backbone.SMALL_NORM_CONFIGS): the LayerNorm after each sees inputs of
# variance ~1e-3, where its epsilon moves the gradients of its gain and of everything before it.
for _name, (_, _pattern) in SMALL_NORM_CONFIGS.items():
    register(
        f"gradients_backbone_{_name}",
        "gradients",
        lambda case, p=_pattern: build_gradients_case(case, small_norms=p),
    )
for _head in HEADS:
    register(f"gradients_{_head}", "gradients", lambda case, h=_head: build_gradients_case(case, h))
register(
    "gradients_masked_lm_small_norms",
    "gradients",
    lambda case: build_gradients_case(case, "masked_lm", small_norms=SMALL_NORM_CONFIGS["small_norms_a"][1]),
)
# LoRA (float32 base): only the low-rank matrices, and the task's head, get gradients.
register("gradients_lora_backbone", "gradients", lambda case: build_gradients_case(case, lora=True))
register(
    "gradients_lora_text_classifier", "gradients", lambda case: build_gradients_case(case, "text_classifier", lora=True)
)
