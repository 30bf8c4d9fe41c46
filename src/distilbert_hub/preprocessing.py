"""Shared packing and truncation for the preprocessors (numpy, no TensorFlow).

A packed row is `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`, right-padded with
`[PAD]` to `sequence_length`, with `padding_mask` 1 on real tokens.
"""

import numpy as np

# KerasHub's names, then Hugging Face's.
TRUNCATE_STRATEGIES = ("round_robin", "waterfall", "longest_first", "only_first", "only_second")


def check_truncate(truncate):
    if truncate not in TRUNCATE_STRATEGIES:
        raise ValueError(f"truncate={truncate!r} is not one of {TRUNCATE_STRATEGIES}.")
    return truncate


def check_sequence_length(sequence_length, minimum):
    if int(sequence_length) != sequence_length or sequence_length < minimum:
        raise ValueError(f"sequence_length must be an integer >= {minimum}; got {sequence_length!r}.")
    return int(sequence_length)


def kept_lengths(first_length, second_length, budget, truncate, row=0):
    """How many tokens of each segment a truncation strategy keeps."""
    if first_length + second_length <= budget:
        return first_length, second_length
    if truncate == "round_robin":
        # KerasHub (tf-text RoundRobinTrimmer): keep tokens alternately, the
        # first segment first, so it gets the odd one.
        first = min(first_length, max(budget - second_length, -(-budget // 2)))
        return first, min(second_length, budget - first)
    if truncate == "longest_first":
        # transformers (Rust tokenizers): the shorter segment keeps up to half
        # the budget (rounded down), the longer one the rest, so the odd token
        # goes to the longer segment, and to the second when they are equal.
        if first_length > second_length:
            second = min(second_length, budget // 2)
            return budget - second, second
        first = min(first_length, budget // 2)
        return first, budget - first
    if truncate == "waterfall":
        first = min(first_length, budget)
        return first, min(second_length, budget - first)
    # only_first / only_second: as transformers, refuse when the segment that
    # may be cut would have to lose every token.
    if truncate == "only_first":
        if second_length >= budget:
            raise ValueError(
                f"row {row}: truncate='only_first' cannot fit: the second segment alone has "
                f"{second_length} tokens, leaving no room for the first in the {budget} available."
            )
        return budget - second_length, second_length
    if first_length >= budget:
        raise ValueError(
            f"row {row}: truncate='only_second' cannot fit: the first segment alone has "
            f"{first_length} tokens, leaving no room for the second in the {budget} available."
        )
    return first_length, budget - first_length


def pack(segments, sequence_length, truncate, tokenizer):
    """Pack one or two lists of 1-D id arrays into `token_ids`, `padding_mask`:
    `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`, truncated by `truncate`."""
    first, second = segments[0], (segments[1] if len(segments) > 1 else None)
    if second is not None and len(second) != len(first):
        raise ValueError(
            f"paired inputs need equal batch sizes; got {len(first)} first and {len(second)} second segments."
        )
    if second is None and truncate == "only_second":
        raise ValueError("truncate='only_second' needs paired inputs (a tuple of two text batches).")
    budget = sequence_length - (3 if second is not None else 2)
    token_ids = np.full((len(first), sequence_length), tokenizer.pad_token_id, dtype=np.int32)
    padding_mask = np.zeros((len(first), sequence_length), dtype=np.int32)
    for row in range(len(first)):
        a = first[row]
        if second is None:
            pieces = [[tokenizer.cls_token_id], a[:budget], [tokenizer.sep_token_id]]
        else:
            b = second[row]
            keep_a, keep_b = kept_lengths(len(a), len(b), budget, truncate, row)
            pieces = [[tokenizer.cls_token_id], a[:keep_a], [tokenizer.sep_token_id], b[:keep_b]]
            pieces.append([tokenizer.sep_token_id])
        ids = np.concatenate([np.asarray(p, dtype=np.int32) for p in pieces])
        token_ids[row, : len(ids)] = ids
        padding_mask[row, : len(ids)] = 1
    return token_ids, padding_mask


TEXT_TYPES = (str, bytes, np.str_, np.bytes_)


def split_segments(x):
    """`x` as (a tuple of text batches, whether it was a single example).

    As in KerasHub, a tuple is a set of segments and a list is a batch:
    `("first", "second")` is one pair, `(firsts, seconds)` a batch of pairs,
    `["a", "b"]` two single texts."""
    if isinstance(x, tuple):
        if len(x) not in (1, 2):
            raise ValueError(f"a tuple of segments holds one or two segments; got {len(x)}.")
        singles = [isinstance(s, TEXT_TYPES) for s in x]
        if all(singles):
            return tuple([s] for s in x), True
        if any(singles):
            raise ValueError("a tuple of segments must be all single texts or all batches of texts; got a mix.")
        return x, False
    if isinstance(x, TEXT_TYPES):
        return ([x],), True
    return (x,), False
