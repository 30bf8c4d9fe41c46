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
# # Preprocessor validation: packed model inputs against transformers' tokenizer calls
#
# **What is compared.** What each task's preprocessor feeds the model, against what
# transformers' tokenizer (`AutoTokenizer.from_pretrained`, same files) returns for the call
# its examples and pipelines make:
#
# | ours | transformers |
# |---|---|
# | `DistilBertTextClassifierPreprocessor`, single texts and pairs, each `truncate` strategy | `tokenizer(first, second, truncation=..., max_length=..., padding="max_length")` |
# | `DistilBertTokenClassifierPreprocessor`, words with labels | `is_split_into_words=True` and the token-classification recipe: the first piece of a word gets its label, the others -100 |
# | `DistilBertQuestionAnswererPreprocessor.windows` | `truncation="only_second", stride=..., return_overflowing_tokens=True, return_offsets_mapping=True` |
#
# Everything is integer (ids, masks, labels, window indices, character offsets):
# `harness.compare.compare` holds it to exact equality.
#
# Run: `tox -e notebooks` (all five, offline, on all-MiniLM-L6-v2 converted to DistilBERT),
# or open this notebook from a checkout and set `checkpoint` below.

# %% tags=["parameters"]
checkpoint = "hf://distilbert/distilbert-base-uncased"
sequence_length = 16
firsts = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Short one.",
    "Café crème brûlée à la française, naïve façade.",
    "自然语言处理是人工智能的一个分支。",
]
seconds = [
    "It was a sunny day.",
    "This second segment is much longer than the first one in this pair of texts.",
    "Zürich and São Paulo.",
    "Tokyo.",
]
words = [
    ["John", "Smith", "visited", "Zürich", "yesterday", "."],
    ["Unbelievably", "tokenization", "works"],
    ["東京", "is", "big"],
]
word_labels = [[1, 2, 0, 3, 0, 0], [0, 0, 0], [3, 0, 0]]
questions = ["Who wrote the book?", "Where did the cat sit?"]
contexts = [
    "The book was written by Jane Austen in the year 1813, and it became a classic of English "
    "literature that is still read by many people around the world today.",
    "The cat sat on the mat near the door.",
]

# %% [markdown]
# Loading comes first: a missing checkpoint, or one that is not DistilBERT, stops here with
# the library's own error.

# %% tags=["load"]
import validation  # first: it sets the Keras backend and puts the repository on the path

import distilbert_hub as hub

hub.DistilBertBackbone.from_preset(checkpoint, load_weights=False)  # its config must be DistilBERT
classifier_preprocessor = hub.DistilBertTextClassifierPreprocessor.from_preset(
    checkpoint, sequence_length=sequence_length
)
directory = validation.local_directory(checkpoint)
print(f"{checkpoint} -> {directory}")

# %%
from transformers import AutoTokenizer

theirs = AutoTokenizer.from_pretrained(directory)
# A literal "[MASK]" in a text: transformers reads it as the special token unless told
# otherwise; it is told what our tokenizer does.
split = not classifier_preprocessor.tokenizer.special_tokens_in_strings

# %%
import keras
import numpy as np

from harness.compare import assert_all_match, compare


def exact(output, ours, expected):
    ours = np.asarray(ours)
    return compare(
        ours.astype(np.int32) if ours.dtype == bool else ours,
        np.asarray(expected, np.int32),
        atol=0.0,
        rtol=0.0,
        tolerance_reason="ids, masks, labels and offsets: exact",
        case_id=f"notebook preprocessor_validation {checkpoint}",
        output=output,
        backend=keras.backend.backend(),
    )


comparisons = []

# %% [markdown]
# ## Text classification: single texts and pairs under each truncation strategy
#
# `only_first` and `only_second` keep one segment whole; a pair where that segment leaves
# no room for the other is refused by both libraries, so those strategies get a sequence
# length that fits every pair here.

# %%
calls = [("single texts", "longest_first", sequence_length, (firsts,))]
calls += [("pairs", "longest_first", sequence_length, (firsts, seconds))]
calls += [("pairs", "only_first", 32, (firsts, seconds)), ("pairs", "only_second", 32, (firsts, seconds))]
for what, truncate, length, args in calls:
    ours = hub.DistilBertTextClassifierPreprocessor(
        classifier_preprocessor.tokenizer, sequence_length=length, truncate=truncate
    )(args[0] if len(args) == 1 else args)
    expected = theirs(*args, truncation=truncate, max_length=length, padding="max_length", split_special_tokens=split)
    for name in ("token_ids", "padding_mask"):
        key = "input_ids" if name == "token_ids" else "attention_mask"
        comparisons.append(exact(f"{what}, {truncate}, length {length}: {name}", ours[name], expected[key]))

# %% [markdown]
# ## Token classification: word labels on the first piece of each word

# %%
token_preprocessor = hub.DistilBertTokenClassifierPreprocessor(
    classifier_preprocessor.tokenizer, sequence_length=sequence_length
)
x, y, weights = token_preprocessor(words, word_labels)
encoded = theirs(
    words,
    is_split_into_words=True,
    truncation=True,
    max_length=sequence_length,
    padding="max_length",
    split_special_tokens=split,
)
recipe = np.full((len(words), sequence_length), -100)
for row in range(len(words)):
    previous = None
    for position, word in enumerate(encoded.word_ids(row)):
        if word is not None and word != previous:
            recipe[row, position] = word_labels[row][word]
        previous = word
comparisons += [
    exact("words: token_ids", x["token_ids"], encoded["input_ids"]),
    exact("words: padding_mask", x["padding_mask"], encoded["attention_mask"]),
    exact("words: labels (-100 = not trained on)", np.where(weights > 0, y, -100), recipe),
]

# %% [markdown]
# ## Question answering: overflowing context windows
#
# A short sequence length and a stride, so that the long context spills into several
# overlapping windows. Offsets are compared on context tokens (the ones an answer can come
# from); the others are 0 on our side.

# %%
qa_length, stride = 24, 6
windows = hub.DistilBertQuestionAnswererPreprocessor(
    classifier_preprocessor.tokenizer, sequence_length=qa_length, stride=stride
).windows(questions, contexts)
encoded = theirs(
    questions,
    contexts,
    truncation="only_second",
    max_length=qa_length,
    stride=stride,
    return_overflowing_tokens=True,
    return_offsets_mapping=True,
    padding="max_length",
    split_special_tokens=split,
)
context = np.array([[s == 1 for s in encoded.sequence_ids(w)] for w in range(len(encoded["input_ids"]))])
offsets = np.where(context[..., None], np.asarray(encoded["offset_mapping"]), 0)
comparisons += [
    exact("qa windows: token_ids", windows.token_ids, encoded["input_ids"]),
    exact("qa windows: padding_mask", windows.padding_mask, encoded["attention_mask"]),
    exact("qa windows: example_index", windows.example_index, encoded["overflow_to_sample_mapping"]),
    exact("qa windows: context_mask", windows.context_mask, context),
    exact("qa windows: context offsets", windows.offsets * windows.context_mask[..., None], offsets),
]
print(f"{len(questions)} questions -> {len(windows.token_ids)} windows of {qa_length} tokens, stride {stride}")
for w in range(len(windows.token_ids)):
    print(f"  window {w} (example {windows.example_index[w]}): {theirs.decode(windows.token_ids[w])}")

# %% [markdown]
# ## Results

# %%
validation.table(comparisons)

# %%
assert_all_match(comparisons)
print(f"all {len(comparisons)} outputs equal transformers'")

# %% [markdown]
# **What to conclude.** For every task the model sees exactly the ids, masks and labels that
# transformers' tokenizer call gives: special tokens in the same places, pairs truncated
# token by token as transformers' strategies do, word labels on first pieces, and question
# answering windows that overlap by `stride` tokens with the same character offsets (so an
# answer span decodes to the same text). `tox -e crosscheck` draws thousands of such inputs
# (tests/crosscheck/test_preprocessors_vs_transformers.py).
