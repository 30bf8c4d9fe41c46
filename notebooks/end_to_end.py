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
# # End to end: each task model against transformers' inference pipeline
#
# **What is compared.** Raw text in, what a user reads out: this library's task methods
# against transformers' `pipeline(...)` (and sentence-transformers for embeddings), each
# side loading the same checkpoint files.
#
# | ours | reference |
# |---|---|
# | `DistilBertMaskedLM.fill_mask` | `pipeline("fill-mask")` |
# | `DistilBertTokenClassifier.entities(aggregation_strategy=...)` | `pipeline("token-classification", aggregation_strategy=...)` |
# | `DistilBertTextClassifier.classify(top_k=None)` | `pipeline("text-classification", top_k=None)` |
# | `DistilBertQuestionAnswerer.answer` | transformers' `DistilBertForQuestionAnswering` logits decoded by its `select_starts_ends` (see below) |
# | `DistilBertTextEmbedder` | `SentenceTransformer.encode` |
#
# A pipeline result is split by `harness.pipeline_results.split_scores` into its structure
# (labels, tokens, words, character offsets: must be equal) and its scores (within
# `SCORE_ATOL`), as the pipeline goldens are; both are compared by `harness.compare.compare`.
#
# **The task heads.** A plain encoder checkpoint (such as all-MiniLM-L6-v2, which CI runs
# on) has no task heads. Each task checkpoint is therefore written by transformers: its
# `from_pretrained` on the encoder with the head initialised under a fixed seed (classifier
# kernels drawn at scale 1/sqrt(width), so that decisions are not near-ties), saved with
# `save_pretrained`. Both sides then load those files. The answers are meaningless (the heads
# are untrained): what is shown is that both sides compute the same ones.
#
# Run: `tox -e notebooks` (all five, offline, on all-MiniLM-L6-v2 converted to DistilBERT),
# or open this notebook from a checkout and set `checkpoint` below.

# %% tags=["parameters"]
checkpoint = "hf://distilbert/distilbert-base-uncased"
# The original sentence-transformers model of the checkpoint, if any (CI: all-MiniLM-L6-v2);
# None: sentence-transformers on the checkpoint itself, mean pooling, normalized.
sentence_transformers_model = None
seed = 0
texts = [
    "Angela Merkel met Emmanuel Macron in Zürich.",
    "Café crème brûlée à la française, naïve façade, São Paulo!",
    "東京は日本の首都です。 Tokyo is big.",
    "Unbelievably, the hyperparameters were miscalibrated (again)...",
]
mask_texts = ["The capital of France is [MASK].", "The [MASK] sat on the [MASK] mat."]
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

embedder = hub.DistilBertTextEmbedder.from_preset(checkpoint)
directory = validation.local_directory(checkpoint)
print(f"{checkpoint} -> {directory}")

# %% [markdown]
# ## The task checkpoints, written by transformers

# %%
import logging
import tempfile
from pathlib import Path

import torch
import transformers
from transformers import AutoTokenizer

logging.getLogger("transformers").setLevel(logging.ERROR)  # "newly initialized" head warnings: intended here
workdir = tempfile.TemporaryDirectory(prefix="end_to_end_")
NER_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
SENTIMENT_LABELS = ["negative", "neutral", "positive"]
TASKS = {
    "fill_mask": ("DistilBertForMaskedLM", {}, None),
    "token_classification": (
        "DistilBertForTokenClassification",
        {"id2label": dict(enumerate(NER_LABELS))},
        "classifier",
    ),
    "text_classification": (
        "DistilBertForSequenceClassification",
        {"id2label": dict(enumerate(SENTIMENT_LABELS))},
        "classifier",
    ),
    "question_answering": ("DistilBertForQuestionAnswering", {}, "qa_outputs"),
}
checkpoints = {}
for task, (class_name, labels, head) in TASKS.items():
    torch.manual_seed(seed)
    model = getattr(transformers, class_name).from_pretrained(directory, attn_implementation="eager", **labels)
    if head is not None:  # a kernel at 1/sqrt(width) gives logits of order 1
        kernel = getattr(model, head).weight
        with torch.no_grad():
            kernel.normal_(0.0, kernel.shape[1] ** -0.5, generator=torch.Generator().manual_seed(seed))
    checkpoints[task] = Path(workdir.name) / task
    model.save_pretrained(checkpoints[task])
    AutoTokenizer.from_pretrained(directory).save_pretrained(checkpoints[task])
    print(f"{task}: {class_name} -> {checkpoints[task]}")

# %%
import keras
import numpy as np
import pandas as pd
from transformers import pipeline

from harness.compare import assert_all_match, compare
from harness.pipeline_results import SCORE_ATOL, SCORE_REASON, STRUCTURE_REASON, split_scores


def reference_pipeline(task):
    return pipeline(
        task.replace("_", "-"),
        model=str(checkpoints[task]),
        device="cpu",
        model_kwargs={"attn_implementation": "eager"},
    )


def compare_results(what, ours, theirs):
    """Structure exact and scores within SCORE_ATOL, as the pipeline goldens."""
    (our_structure, our_scores), (structure, scores) = split_scores(ours), split_scores(theirs)
    common = dict(case_id=f"notebook end_to_end {checkpoint}", backend=keras.backend.backend())
    return [
        compare(
            our_structure,
            structure,
            atol=0,
            rtol=0,
            tolerance_reason=STRUCTURE_REASON,
            output=f"{what}: structure",
            **common,
        ),
        compare(
            our_scores,
            scores,
            atol=SCORE_ATOL,
            rtol=0,
            tolerance_reason=SCORE_REASON,
            output=f"{what}: scores",
            **common,
        ),
    ]


comparisons = []

# %% [markdown]
# ## Fill-mask

# %%
masked_lm = hub.DistilBertMaskedLM.from_preset(str(checkpoints["fill_mask"]))
fill_mask = reference_pipeline("fill_mask")
ours, theirs = masked_lm.fill_mask(mask_texts, top_k=5), fill_mask(mask_texts, top_k=5)
comparisons += compare_results("fill-mask, top 5", ours, theirs)
pd.DataFrame(
    [(c["token_str"], c["score"], t["token_str"], float(t["score"])) for c, t in zip(ours[0], theirs[0])],
    columns=["ours: token", "ours: score", "pipeline: token", "pipeline: score"],
)

# %% [markdown]
# ## Token classification, every aggregation strategy

# %%
token_classifier = hub.DistilBertTokenClassifier.from_preset(str(checkpoints["token_classification"]))
ner = reference_pipeline("token_classification")
for strategy in ("none", "simple", "first", "average", "max"):
    ours = token_classifier.entities(texts, aggregation_strategy=strategy)
    theirs = ner(texts, aggregation_strategy=strategy)
    comparisons += compare_results(f"entities, {strategy}", ours, theirs)
pd.DataFrame(
    [(e["entity_group"], e["word"], e["start"], e["end"], e["score"]) for e in ours[0]],
    columns=["entity_group", "word", "start", "end", "score"],
).assign(**{"pipeline score": [float(e["score"]) for e in theirs[0]]})

# %% [markdown]
# ## Text classification: every label's score, single texts and a pair

# %%
text_classifier = hub.DistilBertTextClassifier.from_preset(str(checkpoints["text_classification"]))
classifier = reference_pipeline("text_classification")
pair = {"text": "Is it raining in Zürich?", "text_pair": "The weather in Zürich is sunny."}
for what, inputs in (("texts", texts), ("pair", [pair])):
    ours, theirs = text_classifier.classify(inputs, top_k=None), classifier(inputs, top_k=None)
    comparisons += compare_results(f"classify {what}, top_k=None", ours, theirs)
pd.DataFrame(
    [{r["label"]: r["score"] for r in row} for row in text_classifier.classify(texts, top_k=None)], index=texts
)

# %% [markdown]
# ## Question answering
#
# transformers 5.24 has no question-answering pipeline, so the reference is the simplest
# honest equivalent: transformers' tokenizer cuts each context into the same overflowing
# windows (`truncation="only_second"`, our preprocessor's length and stride),
# `DistilBertForQuestionAnswering` gives start and end logits, and transformers' own span
# decoding, `select_starts_ends` (from its document question-answering pipeline: the best
# start <= end within `max_answer_len` tokens, over context tokens only), picks each window's
# span; the best-scoring window's span is read from the context through the offsets. First
# the logits themselves, on real tokens, then the answer texts.

# %%
from transformers import DistilBertForQuestionAnswering
from transformers.pipelines.document_question_answering import select_starts_ends

answerer = hub.DistilBertQuestionAnswerer.from_preset(str(checkpoints["question_answering"]))
length, stride = answerer.preprocessor.sequence_length, answerer.preprocessor.stride
qa_model = DistilBertForQuestionAnswering.from_pretrained(
    checkpoints["question_answering"], attn_implementation="eager"
)
encoded = AutoTokenizer.from_pretrained(checkpoints["question_answering"])(
    questions,
    contexts,
    truncation="only_second",
    max_length=length,
    stride=stride,
    return_overflowing_tokens=True,
    return_offsets_mapping=True,
    padding="longest",
    return_tensors="np",
)
with torch.no_grad():
    logits = qa_model.eval()(
        input_ids=torch.from_numpy(encoded["input_ids"]), attention_mask=torch.from_numpy(encoded["attention_mask"])
    )
start, end = logits.start_logits.numpy(), logits.end_logits.numpy()
ours = answerer.predict(
    {"token_ids": encoded["input_ids"].astype("int32"), "padding_mask": encoded["attention_mask"].astype("int32")},
    verbose=0,
)
for name, expected in (("start_logits", start), ("end_logits", end)):
    comparisons.append(
        compare(
            ours[name],
            expected,
            atol=1e-5,
            rtol=0,
            tolerance_reason="float32 on CPU: rounding only",
            case_id=f"notebook end_to_end {checkpoint}",
            output=f"question answering: {name}",
            backend=keras.backend.backend(),
            real_token_mask=encoded["attention_mask"],
        )
    )

MAX_ANSWER_LENGTH = 15  # answer()'s default, the pipelines' max_answer_len
reference_answers = []
for example in range(len(questions)):
    best = (-1.0, "")
    for w in np.flatnonzero(encoded["overflow_to_sample_mapping"] == example):
        p_mask = np.array([s != 1 for s in encoded.sequence_ids(w)], np.int64)  # 1: not context
        starts, ends, scores, _ = select_starts_ends(
            start[w][None],
            end[w][None],
            p_mask[None],
            encoded["attention_mask"][w][None],
            max_answer_len=MAX_ANSWER_LENGTH,
        )
        for s, e, score in zip(starts, ends, scores):
            if score > best[0]:
                best = (
                    score,
                    contexts[example][encoded["offset_mapping"][w, s, 0] : encoded["offset_mapping"][w, e, 1]],
                )
    reference_answers.append(best[1])
our_answers = [result["answer"] for result in answerer.answer(questions, contexts, max_answer_len=MAX_ANSWER_LENGTH)]
answers_equal = our_answers == reference_answers
pd.DataFrame(
    {"question": questions, "ours": our_answers, "transformers logits + select_starts_ends": reference_answers}
)

# %% [markdown]
# ## Sentence embeddings against sentence-transformers

# %%
from sentence_transformers import SentenceTransformer

if sentence_transformers_model is None:  # mean pooling over the checkpoint, then normalized
    expected = SentenceTransformer(directory, device="cpu").encode(texts, normalize_embeddings=True)
else:  # the original model, with its own pooling and normalization modules
    expected = SentenceTransformer(sentence_transformers_model, device="cpu").encode(texts)
comparisons.append(
    compare(
        embedder.predict(texts, verbose=0),
        expected,
        atol=1e-5,
        rtol=0,
        tolerance_reason="float32 on CPU: unit vectors, rounding only",
        case_id=f"notebook end_to_end {checkpoint}",
        output="sentence embeddings",
        backend=keras.backend.backend(),
    )
)
print(f"{len(texts)} embeddings of width {expected.shape[1]}")

# %% [markdown]
# ## Results
#
# One row per compared output. For a `structure` row the "error" is between bytes of the
# canonical JSON and must be 0; scores, logits and embeddings are float32.

# %%
validation.table(comparisons)

# %%
assert_all_match(comparisons)
assert answers_equal, f"answers differ: ours {our_answers}, reference {reference_answers}"
print(f"all {len(comparisons)} outputs and {len(questions)} answers equal the reference")
workdir.cleanup()

# %% [markdown]
# **What to conclude.** From raw text to what a user reads, each task method returns what
# transformers' pipeline returns on the same files: the same fill-mask candidates in the same
# order, the same entity groups with the same words and character spans under every
# aggregation strategy, the same label scores for texts and pairs, the same answer spans
# (question answering compared through transformers' own model and span decoding, as there
# is no pipeline in transformers 5.24), and the same sentence embeddings as
# sentence-transformers. Scores agree to float32 rounding (`SCORE_ATOL`).
