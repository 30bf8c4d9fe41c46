# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Fine-tuning: our Trainer recipe beside transformers' own run
#
# **What is compared.** A sentiment classifier is fine-tuned from the checkpoint twice, on
# the same batches in the same order: by this library (`task.compile(optimizer=
# hub.trainer_optimizer(...))`, `train_on_batch`, as the README's training section shows) and
# by transformers running the optimization recipe its `Trainer` builds (AdamW over Trainer's
# two parameter groups, linear warm-up and decay, gradients clipped to norm 1): the very
# function, `tools/golden_cases/training.py:train_like_trainer`, that writes the project's
# training goldens. Dropout is 0 on both sides, so the runs are deterministic and
# comparable step by step. Then both fine-tuned models classify held-out texts.
#
# Run: `tox -e notebooks` (all five, offline, on all-MiniLM-L6-v2 converted to DistilBERT),
# or open this notebook from a checkout and set `checkpoint` below.

# %% tags=["parameters"]
checkpoint = "hf://distilbert/distilbert-base-uncased"
seed = 0
batch_size = 4
sequence_length = 16

# %% [markdown]
# Loading comes first: a missing checkpoint, or one that is not DistilBERT, stops here with
# the library's own error.

# %% tags=["load"]
import validation  # first: it sets the Keras backend and puts the repository on the path

import distilbert_hub as hub

hub.DistilBertBackbone.from_preset(checkpoint)
directory = validation.local_directory(checkpoint)
print(f"{checkpoint} -> {directory}")

# %% [markdown]
# **The recipe and its tolerance** are those of the full-size training golden
# (`training_preset_distil_bert_base_en_uncased`, 20 steps): learning rate 5e-5, warm-up 2
# steps, linear decay to 0 at step 20, weight decay 0.01, gradient norm clipped to 1. Its
# losses are held to `FULL_SIZE_LOSS_ATOL` = 2e-4 (float32 on CPU: 20 AdamW steps compound
# the rounding of 768- and 3072-wide sums); this checkpoint's sums are no wider.

# %%
from tools.golden_cases.training import (
    FULL_SIZE_LOSS_ATOL,
    FULL_SIZE_LOSS_REASON,
    FULL_SIZE_RECIPE,
    FULL_SIZE_STEPS,
    LR_REASON,
    LR_RTOL,
    NO_DROPOUT,
    train_like_trainer,
)

steps = FULL_SIZE_STEPS
print(f"{steps} steps of {batch_size} texts, recipe {FULL_SIZE_RECIPE}")
print(f"loss tolerance {FULL_SIZE_LOSS_ATOL:g}: {FULL_SIZE_LOSS_REASON}")

# %% [markdown]
# ## Data: short reviews, and a classifier checkpoint written by transformers
#
# The head (pre-classifier and classifier) is initialised by transformers under a fixed
# seed and saved with `save_pretrained`, with dropout 0 in its config; both sides load
# those files.

# %%
import logging
import tempfile
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer, DistilBertForSequenceClassification

rng = np.random.default_rng(seed)
GOOD = ["a wonderful", "a great", "an excellent", "a delightful", "a moving", "a brilliant"]
BAD = ["a terrible", "a boring", "an awful", "a dull", "a tedious", "a dreadful"]
THINGS = ["movie", "film", "story", "performance", "script", "ending", "soundtrack", "cast"]


def reviews(count):
    labels = rng.integers(0, 2, size=count)
    texts = [
        f"{rng.choice(GOOD if label else BAD)} {rng.choice(THINGS)}, "
        f"{rng.choice(['enjoyed', 'loved']) if label else rng.choice(['disliked', 'hated'])} it"
        for label in labels
    ]
    return texts, labels


train_texts, train_labels = reviews(steps * batch_size)
held_out_texts = [
    "a brilliant script, loved it",
    "an awful ending, hated it",
    "what a delightful cast",
    "the soundtrack was tedious and dull",
    "I would watch this film again tomorrow",
    "two hours I will never get back",
]
held_out_labels = [1, 0, 1, 0, 1, 0]

logging.getLogger("transformers").setLevel(logging.ERROR)  # "newly initialized" head: intended
workdir = tempfile.TemporaryDirectory(prefix="fine_tuning_")
classifier_dir = Path(workdir.name) / "classifier"
torch.manual_seed(seed)
DistilBertForSequenceClassification.from_pretrained(
    directory, id2label={0: "negative", 1: "positive"}, attn_implementation="eager", **NO_DROPOUT
).save_pretrained(classifier_dir)
AutoTokenizer.from_pretrained(directory).save_pretrained(classifier_dir)
print(train_texts[:3], train_labels[:3])

# %% [markdown]
# The batches are packed once, by our preprocessor (the preprocessor notebook shows it
# equals transformers' tokenizer call), and fed to both sides as the same arrays.

# %%
classifier = hub.DistilBertTextClassifier.from_preset(str(classifier_dir))
assert classifier.dropout == 0.0, classifier.dropout
classifier.preprocessor.sequence_length = sequence_length
packed = classifier.preprocessor(train_texts)
batches = {
    "token_ids": np.asarray(packed["token_ids"]).reshape(steps, batch_size, sequence_length),
    "padding_mask": np.asarray(packed["padding_mask"]).reshape(steps, batch_size, sequence_length),
    "labels": train_labels.reshape(steps, batch_size),
}

# %% [markdown]
# ## Both runs

# %%
import keras

classifier.compile(optimizer=hub.trainer_optimizer(**FULL_SIZE_RECIPE))
our_losses, our_rates = [], []
for step in range(steps):
    our_rates.append(float(keras.ops.convert_to_numpy(classifier.optimizer.learning_rate)))
    x = {"token_ids": batches["token_ids"][step], "padding_mask": batches["padding_mask"][step]}
    our_losses.append(float(classifier.train_on_batch(x, batches["labels"][step], return_dict=True)["loss"]))

reference = DistilBertForSequenceClassification.from_pretrained(classifier_dir, attn_implementation="eager")
their_losses, their_rates, _ = train_like_trainer(reference, batches, FULL_SIZE_RECIPE, steps)

# %%
from harness.compare import assert_all_match, compare

common = dict(case_id=f"notebook fine_tuning {checkpoint}", backend=keras.backend.backend())
comparisons = [
    compare(
        np.float32(our_losses),
        np.float32(their_losses),
        atol=FULL_SIZE_LOSS_ATOL,
        rtol=0,
        tolerance_reason=FULL_SIZE_LOSS_REASON,
        output="losses",
        **common,
    ),
    compare(
        np.float32(our_rates),
        np.float32(their_rates),
        atol=0,
        rtol=LR_RTOL,
        tolerance_reason=LR_REASON,
        output="learning rates",
        **common,
    ),
]
validation.table(comparisons)

# %% [markdown]
# The worst index is the step. The two loss curves, and their difference against the
# tolerance:

# %%
import matplotlib.pyplot as plt

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
left.plot(their_losses, "o-", label="transformers (Trainer's recipe)", linewidth=3, alpha=0.5)
left.plot(our_losses, "x--", label="distilbert-hub (trainer_optimizer, train_on_batch)")
left.set_xlabel("step")
left.set_ylabel("training loss (batch mean cross-entropy)")
left.set_title("the same batches, the same recipe")
left.legend(fontsize=8)
right.semilogy(np.maximum(np.abs(np.subtract(our_losses, their_losses)), 1e-9), "o-")
right.axhline(FULL_SIZE_LOSS_ATOL, color="red", linestyle="--", label=f"tolerance {FULL_SIZE_LOSS_ATOL:g}")
right.set_xlabel("step")
right.set_ylabel("|ours - transformers| (0 drawn at 1e-9)")
right.set_title("loss difference per step")
right.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
assert_all_match(comparisons)
print(f"{steps} steps: losses within {FULL_SIZE_LOSS_ATOL:g}, learning rates within rtol {LR_RTOL:g}")

# %% [markdown]
# ## Predictions on held-out texts
#
# Our fine-tuned classifier's `classify` against transformers' text-classification pipeline
# on its fine-tuned model. Both models went through the 20 steps compared above, so their
# scores are held to the same 2e-4 as the losses (a probability moves no more than its
# log-loss); labels must agree.

# %%
import pandas as pd
from transformers import pipeline

from harness.pipeline_results import STRUCTURE_REASON, split_scores

ours = classifier.classify(held_out_texts, top_k=None)
theirs = pipeline(
    "text-classification", model=reference.eval(), tokenizer=AutoTokenizer.from_pretrained(classifier_dir)
)(held_out_texts, top_k=None)
(our_structure, our_scores), (structure, scores) = split_scores(ours), split_scores(theirs)
predictions = [
    compare(our_structure, structure, atol=0, rtol=0, tolerance_reason=STRUCTURE_REASON, output="labels", **common),
    compare(
        our_scores,
        scores,
        atol=FULL_SIZE_LOSS_ATOL,
        rtol=0,
        tolerance_reason="after the 20 steps above: as the losses",
        output="scores",
        **common,
    ),
]
table = pd.DataFrame(
    {
        "text": held_out_texts,
        "expected": ["positive" if label else "negative" for label in held_out_labels],
        "ours": [row[0]["label"] for row in ours],
        "ours: P(positive)": [next(r["score"] for r in row if r["label"] == "positive") for row in ours],
        "transformers: P(positive)": [
            float(next(r["score"] for r in row if r["label"] == "positive")) for row in theirs
        ],
    }
)
accuracy = np.mean(table["ours"] == table["expected"])
print(f"held-out accuracy after {steps} steps: {accuracy:.2f}")
table

# %%
validation.table(predictions)

# %%
assert_all_match(predictions)
workdir.cleanup()

# %% [markdown]
# **What to conclude.** `trainer_optimizer` with `train_on_batch` follows transformers'
# Trainer recipe step for step on a real trained checkpoint: the learning-rate schedule to one
# float32 rounding, the losses within the tolerance of the project's 20-step training golden,
# and the two fine-tuned models then give the same predictions on text neither saw. Twenty
# steps at 5e-5 are enough to show the agreement (and, on this easy data, a model that has
# started to learn); they are not a full fine-tuning run.
