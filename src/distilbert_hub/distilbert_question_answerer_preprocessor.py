from dataclasses import dataclass

import keras
import numpy as np

from distilbert_hub.preprocessing import check_sequence_length
from distilbert_hub.preprocessor import Preprocessor


@dataclass
class QuestionAnswerWindows:
    """Model inputs for every window, and what span decoding needs."""

    token_ids: np.ndarray  # [windows, length]
    padding_mask: np.ndarray  # [windows, length]
    example_index: np.ndarray  # [windows]: which (question, context) each window belongs to
    context_mask: np.ndarray  # [windows, length]: 1 on context tokens
    offsets: np.ndarray  # [windows, length, 2]: character spans in the context
    contexts: list
    encodings: list  # [windows]: the Rust encodings (word ids for aligning answers to words)

    def model_inputs(self):
        return {"token_ids": self.token_ids, "padding_mask": self.padding_mask}


@keras.saving.register_keras_serializable(package="distilbert_hub")
class DistilBertQuestionAnswererPreprocessor(Preprocessor):
    """`(questions, contexts)` to extractive-QA windows.

    Each pair becomes one or more `[CLS] question [SEP] context-window [SEP]`
    rows of `sequence_length`; a long context overflows into further windows
    that overlap by `stride` tokens, exactly as `transformers`' tokenizer with
    `truncation="only_second", stride=..., return_overflowing_tokens=True`.
    With answers `y` (a list of `(start_char, end_char)` in each context, or
    of `{"answer_start", "text"}`), labels are the answer's first and last
    token in each window, or 0 (`[CLS]`) where the window does not hold the
    whole answer (HF's convention).
    """

    def __init__(self, tokenizer, sequence_length=384, stride=128):
        super().__init__(tokenizer)
        self.sequence_length = check_sequence_length(sequence_length, 4)
        if int(stride) != stride or not 0 <= stride < self.sequence_length:
            raise ValueError(f"stride must be an integer in [0, sequence_length); got {stride!r}.")
        self.stride = int(stride)

    def windows(self, questions, contexts, sequence_length=None, stride=None):
        """The windows of each (question, context); `sequence_length` and
        `stride` default to the preprocessor's."""
        length = self.sequence_length if sequence_length is None else sequence_length
        stride = self.stride if stride is None else stride
        if isinstance(questions, str) or isinstance(contexts, str):
            questions, contexts = [questions], [contexts]
        if len(questions) != len(contexts):
            raise ValueError(f"{len(questions)} questions but {len(contexts)} contexts.")
        rows = []
        for example, encodings in enumerate(self.tokenizer.pair_windows(questions, contexts, length, stride)):
            rows += [(example, encoding) for encoding in encodings]
        n = len(rows)
        token_ids = np.full((n, length), self.tokenizer.pad_token_id, np.int32)
        padding_mask = np.zeros((n, length), np.int32)
        context_mask = np.zeros((n, length), np.int32)
        offsets = np.zeros((n, length, 2), np.int32)
        for i, (_, encoding) in enumerate(rows):
            k = len(encoding.ids)
            token_ids[i, :k] = encoding.ids
            padding_mask[i, :k] = 1
            is_context = np.array([s == 1 for s in encoding.sequence_ids], dtype=bool)
            context_mask[i, :k] = is_context
            offsets[i, :k] = np.asarray(encoding.offsets, np.int32).reshape(-1, 2) * is_context[:, None]
        return QuestionAnswerWindows(
            token_ids,
            padding_mask,
            np.array([e for e, _ in rows], np.int32),
            context_mask,
            offsets,
            list(contexts),
            [encoding for _, encoding in rows],
        )

    def answer_positions(self, windows, answers):
        starts = np.zeros(len(windows.token_ids), np.int32)
        ends = np.zeros(len(windows.token_ids), np.int32)
        spans = []
        for i, answer in enumerate(answers):
            if isinstance(answer, dict):
                start, text = int(answer["answer_start"]), answer["text"]
                found = windows.contexts[i][start : start + len(text)]
                if found != text:
                    raise ValueError(
                        f"answer {i}: context {i} holds {found!r} at answer_start={start}, not the answer "
                        f"text {text!r}."
                    )
                answer = (start, start + len(text))
            start, end = int(answer[0]), int(answer[1])
            if not 0 <= start < end <= len(windows.contexts[i]):
                raise ValueError(
                    f"answer {i}: span ({start}, {end}) is not inside its context of "
                    f"{len(windows.contexts[i])} characters."
                )
            spans.append((start, end))
        for w, example in enumerate(windows.example_index):
            start, end = spans[example]
            tokens = np.flatnonzero(windows.context_mask[w])
            begins, finishes = windows.offsets[w, tokens, 0], windows.offsets[w, tokens, 1]
            if len(tokens) and begins[0] <= start and finishes[-1] >= end:
                starts[w] = tokens[np.flatnonzero(begins <= start)[-1]]
                ends[w] = tokens[np.flatnonzero(finishes >= end)[0]]
        return starts, ends

    def __call__(self, x, y=None, sample_weight=None):
        if not (isinstance(x, tuple) and len(x) == 2):
            raise ValueError("DistilBertQuestionAnswererPreprocessor takes x=(questions, contexts).")
        windows = self.windows(*x)
        if y is None:
            return self._finish(windows.model_inputs(), None, sample_weight)
        if len(y) != len(windows.contexts):
            raise ValueError(f"{len(y)} answers for {len(windows.contexts)} questions.")
        starts, ends = self.answer_positions(windows, y)
        return self._finish(windows.model_inputs(), {"start_logits": starts, "end_logits": ends}, sample_weight)

    def decode_answers(
        self, start_logits, end_logits, windows, top_k=1, handle_impossible_answer=False, max_answer_len=15
    ):
        """Each example's answers `[{"score", "start", "end", "answer"}]`
        over all its windows, best first, chosen as transformers 4.x's
        question-answering pipeline (fast tokenizer, `align_to_words=True`)
        chooses them:

        - per window, `select_starts_ends`: logits outside the context and
          `[CLS]` masked, start and end softmax-normalized over the window,
          `[CLS]` then zeroed, the `2 * top_k + 10` best spans with start <=
          end < start + `max_answer_len` by product of probabilities, kept
          when both ends are context (or `[CLS]`) tokens;
        - each span widened to whole words (the tokenizer's word ids), its
          score added to an earlier answer with the same text (ignoring
          case) or a new answer;
        - with `handle_impossible_answer`, `{"score": min over windows of
          p_start[CLS] * p_end[CLS], "start": 0, "end": 0, "answer": ""}`
          is added;
        - sorted by score (stable), the first `top_k`.

        `start_logits` / `end_logits` hold one row per window (padding past
        the window's tokens is ignored)."""
        results = [[] for _ in windows.contexts]
        min_null_scores = [1000000.0] * len(windows.contexts)  # the pipeline's "large and positive"
        for w, example in enumerate(windows.example_index):
            encoding = windows.encodings[w]
            length = len(encoding.ids)
            # The pipeline's p_mask: context tokens, and every [CLS] (a
            # "[CLS]" written in the question too) for no-answer models.
            allowed = windows.context_mask[w, :length] | (windows.token_ids[w, :length] == self.tokenizer.cls_token_id)
            starts, ends, scores, min_null_scores[example] = select_starts_ends(
                np.asarray(start_logits[w], np.float32)[:length],
                np.asarray(end_logits[w], np.float32)[:length],
                allowed,
                min_null_scores[example],
                top_k * 2 + 10,  # some candidates merge once aligned to words
                handle_impossible_answer,
                max_answer_len,
            )
            context, answers = windows.contexts[example], results[example]
            for s, e, score in zip(starts, ends, scores):
                begin, finish = word_span(encoding, int(s), int(e))
                text = context[begin:finish]
                same = next((a for a in answers if a["answer"].lower() == text.lower()), None)
                if same is not None:
                    same["score"] += score.item()
                else:
                    answers.append({"score": score.item(), "start": begin, "end": finish, "answer": text})
        for answers, null_score in zip(results, min_null_scores):
            if handle_impossible_answer:
                answers.append({"score": null_score, "start": 0, "end": 0, "answer": ""})
            answers.sort(key=lambda a: a["score"], reverse=True)
            del answers[top_k:]
        return results

    def get_config(self):
        return super().get_config() | {"sequence_length": self.sequence_length, "stride": self.stride}


# === transformers 4.x's question-answering pipeline, on one window ===
# (`pipelines/question_answering.py`, which transformers 5 removed), kept
# line for line: its ties and its quirks decide which answers come out.


def select_starts_ends(start, end, allowed, min_null_score, top_k, handle_impossible_answer, max_answer_len):
    """The window's best spans `(starts, ends, scores)` and the running
    minimum no-answer score, from 1-D float32 logits of the window's real
    tokens; `allowed` (1-D) marks the tokens an answer may use."""
    undesired_tokens = np.asarray(allowed, np.int64)[None]
    undesired_tokens_mask = undesired_tokens == 0.0
    start = np.where(undesired_tokens_mask, -10000.0, start[None])
    end = np.where(undesired_tokens_mask, -10000.0, end[None])
    start = np.exp(start - start.max(axis=-1, keepdims=True))
    start = start / start.sum()
    end = np.exp(end - end.max(axis=-1, keepdims=True))
    end = end / end.sum()
    if handle_impossible_answer:
        min_null_score = min(min_null_score, (start[0, 0] * end[0, 0]).item())
    start[0, 0] = end[0, 0] = 0.0
    starts, ends, scores = decode_spans(start, end, top_k, max_answer_len, undesired_tokens)
    return starts, ends, scores, min_null_score


def decode_spans(start, end, top_k, max_answer_len, undesired_tokens):
    outer = np.matmul(np.expand_dims(start, -1), np.expand_dims(end, 1))
    candidates = np.tril(np.triu(outer), max_answer_len - 1)
    scores_flat = candidates.flatten()
    if top_k == 1:
        idx_sort = [np.argmax(scores_flat)]
    elif len(scores_flat) < top_k:
        idx_sort = np.argsort(-scores_flat)
    else:
        idx = np.argpartition(-scores_flat, top_k)[0:top_k]
        idx_sort = idx[np.argsort(-scores_flat[idx])]
    starts, ends = np.unravel_index(idx_sort, candidates.shape)[1:]
    # `nonzero()` of the [1, length] mask holds row indices (all 0) too, so
    # a span may start or end at [CLS] whatever the mask: kept, as there.
    desired_spans = np.isin(starts, undesired_tokens.nonzero()) & np.isin(ends, undesired_tokens.nonzero())
    starts, ends = starts[desired_spans], ends[desired_spans]
    return starts, ends, candidates[0, starts, ends]


def word_span(encoding, s, e):
    """Characters of the context from the start of token `s`'s word to the
    end of token `e`'s word (the pipeline's `get_indices` with
    `align_to_words`); token offsets where a token has no word ([CLS])."""
    try:
        start_word, end_word = encoding.token_to_word(s), encoding.token_to_word(e)
        return encoding.word_to_chars(start_word, 1)[0], encoding.word_to_chars(end_word, 1)[1]
    except Exception:  # `word_to_chars(None)` for [CLS], as there
        return encoding.offsets[s][0], encoding.offsets[e][1]
