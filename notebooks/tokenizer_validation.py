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
# # Tokenizer validation: ids, offsets and decoding against transformers
#
# **What is compared.** The checkpoint's tokenizer files are read twice: by
# `DistilBertTokenizer.from_preset` and by transformers' `AutoTokenizer.from_pretrained`
# (its fast tokenizer, what a transformers user gets). For every text below: the token ids,
# the character offsets of each token in the original string, and the decoded text. Ids and
# offsets are integers: `harness.compare.compare` holds them to exact equality. Put your own
# sentences in `texts`.
#
# Run: `tox -e notebooks` (all five, offline, on all-MiniLM-L6-v2 converted to DistilBERT),
# or open this notebook from a checkout and set `checkpoint` below.

# %% tags=["parameters"]
checkpoint = "hf://distilbert/distilbert-base-uncased"
texts = [
    "The quick brown fox jumps over the lazy dog.",
    "Café crème brûlée à la française, naïve façade, São Paulo!",
    "東京は日本の首都です。 Tokyo is big.",
    "It's 3:45pm -- we've shipped v0.1.0 & the tests pass: 100%.",
    "Unbelievably, the hyperparameters were miscalibrated (again)...",
    "  tabs\tand\nnewlines,   repeated   spaces  ",
    "emoji 🤗👍🏽 and symbols ™ © ½ → ∑",
    "Ǆemal Ärger ΣΊΣΥΦΟΣ İstanbul straße",
    "",
    "a" * 120 + " supercalifragilisticexpialidocious",
]

# %% [markdown]
# Loading comes first: a missing checkpoint, or one that is not DistilBERT, stops here with
# the library's own error.

# %% tags=["load"]
import validation  # first: it sets the Keras backend and puts the repository on the path

import distilbert_hub as hub

hub.DistilBertBackbone.from_preset(checkpoint, load_weights=False)  # its config must be DistilBERT
ours = hub.DistilBertTokenizer.from_preset(checkpoint)
directory = validation.local_directory(checkpoint)
print(f"{checkpoint} -> {directory}")
print(
    f"vocabulary {ours.vocabulary_size()} tokens, lowercase={ours.lowercase}, "
    f"strip_accents={ours.strip_accents}, tokenize_chinese_chars={ours.tokenize_chinese_chars}"
)

# %%
from transformers import AutoTokenizer

theirs = AutoTokenizer.from_pretrained(directory)
print(type(theirs).__name__)

# %% [markdown]
# Our tokenizer returns ids without special tokens (as KerasHub's); transformers is asked for
# the same (`add_special_tokens=False`). A literal `[MASK]` in a text is a special token for
# transformers by default and ordinary text for ours unless the files say otherwise, so
# transformers is told which one ours does (`split_special_tokens`).

# %%
import keras
import numpy as np

from harness.compare import assert_all_match, compare

expected = theirs(
    texts,
    add_special_tokens=False,
    return_offsets_mapping=True,
    split_special_tokens=not ours.special_tokens_in_strings,
)
comparisons = []
for i, (ids, offsets) in enumerate(ours.tokenize_with_offsets(texts)):
    for name, actual, wanted in (
        ("token_ids", ids, np.asarray(expected["input_ids"][i], np.int32)),
        ("offsets", offsets, np.asarray(expected["offset_mapping"][i], np.int32).reshape(-1, 2)),
    ):
        comparisons.append(
            compare(
                actual,
                wanted,
                atol=0.0,
                rtol=0.0,
                tolerance_reason="token ids and character offsets: exact",
                case_id=f"notebook tokenizer_validation {checkpoint}",
                output=f"text {i} {name}",
                backend=keras.backend.backend(),
            )
        )
validation.table(comparisons)

# %% [markdown]
# `compared` is the number of ids (or twice the number of tokens, for offsets); a length
# difference would show as a shape problem in the last column. One text token by token,
# with the piece of the original string each offset points at:

# %%
import pandas as pd

shown = 1
ids, offsets = ours.tokenize_with_offsets(texts[shown])
pd.DataFrame(
    {
        "ours": [ours.id_to_token(int(t)) for t in ids],
        "transformers": theirs.convert_ids_to_tokens(expected["input_ids"][shown]),
        "offsets": [tuple(o) for o in offsets.tolist()],
        "text[start:end]": [texts[shown][a:b] for a, b in offsets.tolist()],
    }
)

# %% [markdown]
# Decoding: the ids back to text, as transformers' `decode` joins WordPiece pieces.

# %%
decoded = [
    (ours.detokenize(ids), theirs.decode(e))
    for (ids, _), e in zip(ours.tokenize_with_offsets(texts), expected["input_ids"])
]
different = [(i, a, b) for i, (a, b) in enumerate(decoded) if a != b]
pd.DataFrame(decoded, columns=["ours", "transformers"])

# %%
assert_all_match(comparisons)
assert not different, f"decoded texts differ: {different}"
print(f"{len(texts)} texts: ids, offsets and decoded text equal transformers'")

# %% [markdown]
# **What to conclude.** On these texts (accents, CJK, emoji, control characters, an empty
# string, a word over WordPiece's 100-character limit) our tokenizer gives transformers' ids,
# offsets and decoded text exactly, from the same files. The options it read from them are
# printed under the load cell; the property tests (`tests/test_tokenizer_properties.py`) and
# `tox -e crosscheck` do the same on generated text.
