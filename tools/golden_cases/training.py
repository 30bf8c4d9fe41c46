"""Training cases: `transformers.Trainer`'s optimization recipe run for N
steps on fixed batches, recorded step by step.

The loop is the one `Trainer` runs, written out so nothing but the recipe
varies: `DistilBertFor*(labels=...)` loss, `backward`, `clip_grad_norm_`,
`torch.optim.AdamW` over the two parameter groups of
`Trainer.create_optimizer` (decay from `Trainer.get_decay_parameter_names`
itself), `get_linear_schedule_with_warmup` stepped after each update.
Dropout is 0 so the run is deterministic. Recorded: the loss and learning
rate of every step, and every parameter after the last step (tiny cases) or
the classifier's (full size, whose initial weights are seeded, not stored).
"""

import numpy as np

from harness.golden import Golden, GoldenOutput
from harness.seeded_weights import seeded_weights, weights_digest
from tools.golden_cases import register, seed_for
from tools.golden_cases.backbone import hf_config_dict
from tools.golden_cases.heads import CONFIG, HEADS
from tools.golden_cases.presets import PRESETS, SMALLEST_PRESET
from tools.golden_cases.reference import deterministic_torch, padded_token_ids, seeded_state_dict

NO_DROPOUT = dict(dropout=0.0, attention_dropout=0.0, seq_classif_dropout=0.0, qa_dropout=0.0)
# A learning rate at which a tiny model's weights move visibly in 12 steps
# (5e-5, Trainer's default, would move them by less than the comparison's
# tolerance); warm-up 3 so step 0 runs at rate 0, total 15 so the decay is
# mid-way at the end.
TINY_RECIPE = dict(learning_rate=1e-3, warmup_steps=3, total_steps=15, weight_decay=0.01, max_grad_norm=1.0)
TINY_STEPS = 12
FULL_SIZE_RECIPE = dict(learning_rate=5e-5, warmup_steps=2, total_steps=20, weight_decay=0.01, max_grad_norm=1.0)
FULL_SIZE_STEPS = 20
ADAM = dict(betas=(0.9, 0.999), eps=1e-8)

# Measured on jax, tensorflow and torch (AMD EPYC CPU), worst of both tiny
# cases: losses 2.0e-6, weights 4.2e-7 (k_lin.bias aside), learning rates 1.3e-7
# relative (one float32 rounding).
LOSS_ATOL = 1e-5
LOSS_REASON = (
    "float32 on CPU: 12 AdamW steps compound forward/backward rounding; worst 2.0e-6 measured on losses of order 1"
)
WEIGHTS_ATOL = 2e-6
WEIGHTS_REASON = "float32 on CPU: 12 AdamW updates (<= lr=1e-3 each) of weights of order 1; worst 4.2e-7 measured"
# softmax(q.(k + b)) = softmax(q.k) over the keys: the key bias's gradient is 0
# in exact arithmetic, so it receives rounding noise, which Adam divides by its
# own RMS into steps of up to lr. Its bound is the sum of the learning rates
# (measured: 1.7e-4 of 8.7e-3).
KEY_BIAS = "attention.k_lin.bias"
KEY_BIAS_REASON = (
    "the key bias's gradient is 0 in exact arithmetic (softmax is shift-invariant over keys): Adam turns its "
    "rounding noise into steps of up to lr, bounded by the sum of the learning rates (worst 1.7e-4 measured)"
)
LR_RTOL = 1e-6
LR_REASON = "the schedule in float32 (torch's LambdaLR computes it in float64): one rounding, 1.3e-7 measured"
FULL_SIZE_LOSS_ATOL = 2e-4
FULL_SIZE_LOSS_REASON = (
    "float32 on CPU at full size: 20 AdamW steps over 67M parameters compound rounding of 768- and 3072-wide "
    "sums into losses of order 1"
)


def output(value, atol, reason, rtol=0.0):
    return GoldenOutput(np.asarray(value, np.float32), atol=atol, rtol=rtol, tolerance_reason=reason)


def weight_output(name, value, rates):
    if name.endswith(KEY_BIAS):
        return output(value, float(np.sum(rates)), KEY_BIAS_REASON)
    return output(value, WEIGHTS_ATOL, WEIGHTS_REASON)


def batches(rng, head, steps, vocab_size, lengths, sequence_length, num_labels):
    """Fixed batches, one per step: padded rows and a one-token row; the token
    classifier's padding labelled -100 (ignored by transformers' loss)."""
    ids, masks, labels = [], [], []
    for _ in range(steps):
        token_ids, padding_mask = padded_token_ids(rng, vocab_size, lengths, sequence_length)
        ids.append(token_ids)
        masks.append(padding_mask)
        if head == "token_classifier":
            labels.append(np.where(padding_mask > 0, rng.integers(0, num_labels, padding_mask.shape), -100))
        else:
            labels.append(rng.integers(0, num_labels, len(lengths)))
    return {
        "token_ids": np.stack(ids).astype(np.int32),
        "padding_mask": np.stack(masks).astype(np.int32),
        "labels": np.stack(labels).astype(np.int32),
    }


def train_like_trainer(model, inputs, recipe, steps):
    """Trainer's inner loop on one batch per step; returns losses and learning rates."""
    import torch
    from transformers import Trainer, get_linear_schedule_with_warmup

    decay = set(Trainer.get_decay_parameter_names(None, model))
    named = list(model.named_parameters())
    groups = [
        {"params": [p for n, p in named if n in decay], "weight_decay": recipe["weight_decay"]},
        {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=recipe["learning_rate"], **ADAM)
    schedule = get_linear_schedule_with_warmup(optimizer, recipe["warmup_steps"], recipe["total_steps"])
    model.train()
    losses, rates = [], []
    for step in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        loss = model(
            input_ids=torch.from_numpy(inputs["token_ids"][step]).long(),
            attention_mask=torch.from_numpy(inputs["padding_mask"][step]).long(),
            labels=torch.from_numpy(inputs["labels"][step]).long(),
        ).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe["max_grad_norm"])
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses, rates, sorted(decay)


def recipe_provenance(recipe, steps, decay):
    return {f"recipe_{k}": v for k, v in recipe.items()} | {
        "recipe_steps": steps,
        "recipe_beta_1": ADAM["betas"][0],
        "recipe_beta_2": ADAM["betas"][1],
        "recipe_epsilon": ADAM["eps"],
        "decayed_parameters": ",".join(decay),
    }


def build_tiny_training_case(case, head):
    import transformers
    from transformers import DistilBertConfig

    class_name, extra = HEADS[head]
    config = DistilBertConfig(attn_implementation="eager", **CONFIG, **extra, **NO_DROPOUT)
    deterministic_torch()
    model = getattr(transformers, class_name)(config)
    initial = seeded_state_dict(model, seed_for(f"{case.case_id}/weights"))
    rng = np.random.default_rng(case.seed)
    inputs = batches(rng, head, TINY_STEPS, config.vocab_size, [10, 6, 1, 8], 10, config.num_labels)
    losses, rates, decay = train_like_trainer(model, inputs, TINY_RECIPE, TINY_STEPS)
    final = {name: t.detach().numpy() for name, t in model.state_dict().items()}
    outputs = {
        "losses": output(losses, LOSS_ATOL, LOSS_REASON),
        "learning_rates": output(rates, 0.0, LR_REASON, rtol=LR_RTOL),
    } | {f"weights/{name}": weight_output(name, value, rates) for name, value in sorted(final.items())}
    return Golden(
        case_id=case.case_id,
        kind=case.kind,
        provenance={"head": head, "hf_class": class_name} | recipe_provenance(TINY_RECIPE, TINY_STEPS, decay),
        config=hf_config_dict(config),
        inputs=inputs,
        outputs=outputs,
        weights=initial,
    )


def build_full_size_training_case(case, preset):
    """The smallest preset (the seeded weights `tools/make_checkpoints.py`
    writes for it) with a seeded 2-class head, fine-tuned for 20 steps."""
    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    config = DistilBertConfig(attn_implementation="eager", **PRESETS[preset], num_labels=2, **NO_DROPOUT)
    deterministic_torch()
    model = DistilBertForSequenceClassification(config)
    shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    backbone_shapes = {k[len("distilbert.") :]: v for k, v in shapes.items() if k.startswith("distilbert.")}
    head_shapes = {k: v for k, v in shapes.items() if not k.startswith("distilbert.")}
    weights_seed, head_seed = seed_for(f"weights_{preset}"), seed_for(f"{case.case_id}/head")
    backbone = seeded_weights(backbone_shapes, weights_seed)
    head = seeded_weights(head_shapes, head_seed)
    state = {f"distilbert.{k}": torch.from_numpy(v) for k, v in backbone.items()}
    model.load_state_dict(state | {k: torch.from_numpy(v) for k, v in head.items()}, strict=True)
    rng = np.random.default_rng(case.seed)
    inputs = batches(rng, "text_classifier", FULL_SIZE_STEPS, config.vocab_size, [32, 20, 9, 1], 32, 2)
    losses, rates, decay = train_like_trainer(model, inputs, FULL_SIZE_RECIPE, FULL_SIZE_STEPS)
    outputs = {
        "losses": output(losses, FULL_SIZE_LOSS_ATOL, FULL_SIZE_LOSS_REASON),
        "learning_rates": output(rates, 0.0, LR_REASON, rtol=LR_RTOL),
    }
    return Golden(
        case_id=case.case_id,
        kind=case.kind,
        provenance={
            "head": "text_classifier",
            "hf_class": "DistilBertForSequenceClassification",
            "preset": preset,
            "weights_seed": weights_seed,
            "weights_sha256": weights_digest(backbone),
            "head_weights_seed": head_seed,
            "head_weights_sha256": weights_digest(head),
        }
        | recipe_provenance(FULL_SIZE_RECIPE, FULL_SIZE_STEPS, decay),
        config=hf_config_dict(config),
        inputs=inputs,
        outputs=outputs,
    )


for _head in ("text_classifier", "token_classifier"):
    register(f"training_{_head}", "training", lambda case, h=_head: build_tiny_training_case(case, h))
register(
    f"training_preset_{SMALLEST_PRESET}",
    "training",
    lambda case: build_full_size_training_case(case, SMALLEST_PRESET),
    tier="large",
)
