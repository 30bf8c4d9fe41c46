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

    def windows(self, questions, contexts):
        if isinstance(questions, str) or isinstance(contexts, str):
            questions, contexts = [questions], [contexts]
        if len(questions) != len(contexts):
            raise ValueError(f"{len(questions)} questions but {len(contexts)} contexts.")
        rows = []
        for example, encodings in enumerate(
            self.tokenizer.pair_windows(questions, contexts, self.sequence_length, self.stride)
        ):
            rows += [(example, encoding) for encoding in encodings]
        n, length = len(rows), self.sequence_length
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
            token_ids, padding_mask, np.array([e for e, _ in rows], np.int32), context_mask, offsets, list(contexts)
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

    def decode_answers(self, start_logits, end_logits, windows, max_answer_length=15):
        """The best context span of each example over all its windows, as
        text, chosen as `transformers`' question-answering pipeline chooses:
        per window, logits outside the context are masked, start and end are
        softmax-normalized, and the span (start <= end < start +
        `max_answer_length`) with the highest product of probabilities wins;
        across windows the highest such score wins (the first on a tie)."""
        best = [(-1.0, "")] * len(windows.contexts)
        start_logits, end_logits = np.asarray(start_logits), np.asarray(end_logits)
        for w, example in enumerate(windows.example_index):
            allowed = windows.context_mask[w].astype(bool)
            if not allowed.any():
                continue
            start, end = (self._window_probabilities(x[w], allowed) for x in (start_logits, end_logits))
            scores = np.tril(np.triu(np.outer(start, end)), max_answer_length - 1)
            i, j = np.unravel_index(np.argmax(scores), scores.shape)
            if allowed[i] and allowed[j] and scores[i, j] > best[example][0]:
                begin, finish = windows.offsets[w, i, 0], windows.offsets[w, j, 1]
                best[example] = (scores[i, j], windows.contexts[example][begin:finish])
        return [text for _, text in best]

    @staticmethod
    def _window_probabilities(logits, allowed):
        logits = np.where(allowed, logits, -10000.0)
        probabilities = np.exp(logits - logits.max())
        probabilities = probabilities / probabilities.sum()
        probabilities[0] = 0.0  # [CLS]: no answer is not an answer here
        return probabilities

    def get_config(self):
        return super().get_config() | {"sequence_length": self.sequence_length, "stride": self.stride}
