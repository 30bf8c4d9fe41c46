"""What the task methods share to return what `transformers`' pipelines
return: the score functions (the pipelines' numpy ones), argument checks and
the pipelines' input shapes (one text, or a list of texts)."""

import numpy as np

from distilbert_hub.preprocessing import TEXT_TYPES


def softmax(logits):
    """transformers' `pipelines.text_classification.softmax`, in float32."""
    logits = np.asarray(logits, np.float32)
    shifted_exp = np.exp(logits - np.max(logits, axis=-1, keepdims=True))
    return shifted_exp / shifted_exp.sum(axis=-1, keepdims=True)


def sigmoid(logits):
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float32)))


def check_top_k(top_k, allow_none=False):
    if top_k is None and allow_none:
        return None
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        also = " or None (every label)" if allow_none else ""
        raise ValueError(f"top_k must be an integer >= 1{also}; got {top_k!r}.")
    return int(top_k)


def positive_integer(value, name, method):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{method}: {name} must be an integer >= 1; got {value!r}.")
    return int(value)


def texts_argument(inputs, method):
    """(list of texts, whether one text was given), refusing anything that is
    not a string or a list of strings with an error naming `inputs`."""
    if isinstance(inputs, TEXT_TYPES):
        return [as_text(inputs, "inputs", method)], True
    if not isinstance(inputs, (list, tuple)) or len(inputs) == 0:
        raise TypeError(f"{method}: inputs must be a string or a non-empty list of strings; got {describe(inputs)}.")
    return [as_text(text, f"inputs[{i}]", method) for i, text in enumerate(inputs)], False


def as_text(text, where, method):
    if isinstance(text, (bytes, np.bytes_)):
        try:
            return bytes(text).decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"{method}: {where} is bytes that are not UTF-8 ({error.reason}).") from None
    if not isinstance(text, TEXT_TYPES):
        raise TypeError(f"{method}: {where} must be a string; got {describe(text)}.")
    return str(text)


def describe(value):
    return f"{type(value).__name__} {value!r:.80}"


def check_fits(rows, sequence_length, method):
    """The pipelines do not truncate (their model refuses a row past its
    positions); a row longer than the preprocessor's `sequence_length` is
    refused here rather than answered from a cut text."""
    for i, row in enumerate(rows):
        if len(row) > sequence_length:
            raise ValueError(
                f"{method}: inputs[{i}] is {len(row)} tokens with [CLS] and [SEP], more than the preprocessor's "
                f"sequence_length={sequence_length}; shorten the text (transformers' pipeline does not truncate it "
                "either)."
            )
