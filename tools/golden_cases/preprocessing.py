"""Preprocessor cases: the ids `transformers`' tokenizer gives for packing,
each truncation strategy, word-label alignment and QA overflow windows."""

import numpy as np

from harness.golden import Golden, GoldenOutput
from tools.golden_cases import register
from tools.golden_cases.tokenizer import EXACT, reference_tokenizer, tokenizer_config

FIRST = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Short one.",
    "Café crème brûlée à la française, naïve façade.",
    "自然语言处理是人工智能的一个分支。",
    "a b c d e f g h i j k l m n o p",
]
SECOND = [
    "It was a sunny day.",
    "This second segment is much longer than the first one in this pair of texts.",
    "Zürich and São Paulo.",
    "Tokyo.",
    "q r s t u v w x y z",
]
# Pairs where the first segment is the longer one, the second, or neither.
LONG = "one two three four five six seven eight nine ten eleven twelve"
PAIR_FIRST = FIRST + [
    "one two three four five six seven eight",
    "alpha beta gamma",
    "x",
    "alpha beta gamma delta epsilon",
]
PAIR_SECOND = SECOND + ["alpha beta gamma delta epsilon zeta", "delta epsilon zeta", "y", LONG]
# (sequence_length, first texts, second texts or None); lengths where every strategy can fit.
PACKING = {
    "single": (10, FIRST, None),
    "longest_first": (15, FIRST, SECOND),
    "longest_first_odd_budget": (10, PAIR_FIRST, PAIR_SECOND),
    "longest_first_even_budget": (11, PAIR_FIRST, PAIR_SECOND),
    # The last rows keep a segment of more than half the room, so that
    # longest_first would have cut it.
    "only_first": (24, FIRST + [LONG + " and more"], [t[:12] for t in SECOND] + [LONG]),
    "only_second": (26, [t[:12] for t in FIRST] + [LONG], SECOND + [LONG + " and more"]),
}
WORDS = [
    ["John", "Smith", "visited", "Zürich", "yesterday", "."],
    ["Unbelievably", "tokenization", "works"],
    ["東京", "is", "big"],
]
WORD_LABELS = [[1, 2, 0, 3, 0, 0], [0, 0, 0], [3, 0, 0]]
QUESTIONS = ["Who wrote the book?", "Where did the cat sit?"]
CONTEXTS = [
    "The book was written by Jane Austen in the year 1813, and it became a classic of English "
    "literature that is still read by many people around the world today.",
    "The cat sat on the mat near the door.",
]


def exact(value, mask=None):
    return GoldenOutput(np.asarray(value, np.int32), 0.0, 0.0, EXACT, real_token_mask=mask)


def golden(case, options, inputs, outputs, provenance):
    return Golden(
        case_id=case.case_id,
        kind=case.kind,
        provenance=provenance,
        config=tokenizer_config({"lowercase": True}) | options,
        inputs=inputs,
        outputs=outputs,
    )


def build_packing_case(case, name):
    length, first, second = PACKING[name]
    tok = reference_tokenizer(tokenizer_config({"lowercase": True}))
    truncate = "longest_first" if name == "single" else name.removesuffix("_odd_budget").removesuffix("_even_budget")
    args = (first,) if second is None else (first, second)
    encoded = tok(*args, truncation=truncate, max_length=length, padding="max_length", split_special_tokens=True)
    inputs = {"first": first} | ({"second": second} if second else {})
    outputs = {"token_ids": exact(encoded["input_ids"]), "padding_mask": exact(encoded["attention_mask"])}
    return golden(
        case, {"sequence_length": length, "truncate": truncate}, inputs, outputs, {"preprocessor": "text_classifier"}
    )


def build_word_labels_case(case):
    length = 12
    tok = reference_tokenizer(tokenizer_config({"lowercase": True}))
    encoded = tok(
        WORDS,
        is_split_into_words=True,
        truncation=True,
        max_length=length,
        padding="max_length",
        split_special_tokens=True,
    )
    labels = np.full((len(WORDS), length), -100, np.int32)
    for row in range(len(WORDS)):
        previous = None
        for position, word in enumerate(encoded.word_ids(row)):
            if word is not None and word != previous:  # transformers' recipe: first piece labelled
                labels[row, position] = WORD_LABELS[row][word]
            previous = word
    outputs = {
        "token_ids": exact(encoded["input_ids"]),
        "padding_mask": exact(encoded["attention_mask"]),
        "labels": exact(labels),
    }
    inputs = {f"words_{i}": words for i, words in enumerate(WORDS)} | {
        "word_labels": np.array([row + [-1] * (6 - len(row)) for row in WORD_LABELS], np.int32)
    }
    return golden(case, {"sequence_length": length}, inputs, outputs, {"preprocessor": "token_classifier"})


def overflow_windows(tokenizer, questions, contexts, length, stride):
    """transformers' extractive-QA windows: the context cut into overlapping
    windows beside the question, with offsets (its QA recipe's call)."""
    return tokenizer(
        questions,
        contexts,
        truncation="only_second",
        max_length=length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="max_length",
        split_special_tokens=True,
    )


def build_qa_case(case):
    length, stride = 24, 6
    tok = reference_tokenizer(tokenizer_config({"lowercase": True}))
    encoded = overflow_windows(tok, QUESTIONS, CONTEXTS, length, stride)
    context_offsets = np.zeros((len(encoded["input_ids"]), length, 2), np.int32)
    for window in range(len(encoded["input_ids"])):
        for position, sequence in enumerate(encoded.sequence_ids(window)):
            if sequence == 1:
                context_offsets[window, position] = encoded["offset_mapping"][window][position]
    outputs = {
        "token_ids": exact(encoded["input_ids"]),
        "padding_mask": exact(encoded["attention_mask"]),
        "example_index": exact(encoded["overflow_to_sample_mapping"]),
        "offsets": exact(context_offsets),
    }
    return golden(
        case,
        {"sequence_length": length, "stride": stride},
        {"questions": QUESTIONS, "contexts": CONTEXTS},
        outputs,
        {"preprocessor": "question_answerer"},
    )


for _name in PACKING:
    register(f"preprocessor_{_name}", "preprocessor", lambda case, n=_name: build_packing_case(case, n))
register("preprocessor_word_labels", "preprocessor", build_word_labels_case)
register("preprocessor_qa_windows", "preprocessor", build_qa_case)
