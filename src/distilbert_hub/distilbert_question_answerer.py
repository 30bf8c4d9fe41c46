import warnings

import keras
import numpy as np

from distilbert_hub.distilbert_question_answerer_preprocessor import DistilBertQuestionAnswererPreprocessor
from distilbert_hub.input_checks import check_class_labels, concrete_values
from distilbert_hub.layers.initializers import weight_initializer
from distilbert_hub.pipeline_outputs import as_text, check_top_k, describe, positive_integer
from distilbert_hub.preprocessing import TEXT_TYPES
from distilbert_hub.task import Task, check_backbone


@keras.saving.register_keras_serializable(package="distilbert_hub")
class DistilBertQuestionAnswerer(Task):
    """Extractive question answering, equal to
    `DistilBertForQuestionAnswering`: dropout -> Dense(2) on every token.
    Outputs `{"start_logits", "end_logits"}`, each `[batch, length]`.
    `answer(question, context)` returns what transformers' question-answering
    pipeline returns."""

    preprocessor_cls = DistilBertQuestionAnswererPreprocessor

    def __init__(self, backbone, preprocessor=None, dropout=0.1, **kwargs):
        check_backbone(backbone)

        # === Layers ===
        self.output_dropout = keras.layers.Dropout(dropout, dtype=backbone.dtype_policy, name="output_dropout")
        self.output_dense = keras.layers.Dense(
            2, kernel_initializer=weight_initializer(), dtype=backbone.dtype_policy, name="qa_logits"
        )

        # === Functional Model ===
        inputs = backbone.input
        logits = self.output_dense(self.output_dropout(backbone(inputs)))
        outputs = {"start_logits": logits[..., 0], "end_logits": logits[..., 1]}
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.dropout = dropout
        self._setup_task(backbone, preprocessor)

    def check_labels(self, y, x):
        if y is None:
            return
        if not isinstance(y, dict) or set(y) != {"start_logits", "end_logits"}:
            raise ValueError(
                "DistilBertQuestionAnswerer: labels are {'start_logits': starts, 'end_logits': ends} "
                f"(token positions); got {type(y).__name__}."
            )
        length = np.shape(x["token_ids"])[-1] if isinstance(x, dict) and "token_ids" in x else None
        for name in ("start_logits", "end_logits"):
            check_class_labels(y[name], length or np.iinfo(np.int32).max, f"DistilBertQuestionAnswerer '{name}'")
        starts, ends = concrete_values(y["start_logits"]), concrete_values(y["end_logits"])
        if starts is not None and ends is not None and (starts > ends).any():
            row = int(np.flatnonzero(starts > ends)[0])
            raise ValueError(
                f"DistilBertQuestionAnswerer: row {row} has start {int(starts[row])} after end {int(ends[row])}."
            )

    def compile_defaults(self):
        """The mean of the start and end cross-entropies, as transformers computes it."""
        return {
            "loss": {
                name: keras.losses.SparseCategoricalCrossentropy(from_logits=True)
                for name in ("start_logits", "end_logits")
            },
            "loss_weights": {"start_logits": 0.5, "end_logits": 0.5},
        }

    # --- question answering as transformers' pipeline -----------------------------

    def answer(
        self,
        question,
        context,
        top_k=1,
        doc_stride=None,
        max_answer_len=15,
        max_seq_len=None,
        max_question_len=64,
        handle_impossible_answer=False,
        batch_size=32,
        max_answer_length=None,
    ):
        """Answers `{"score", "start", "end", "answer"}` (character offsets
        in the context), equal to transformers 4.x's
        `pipeline("question-answering")` with a fast tokenizer (transformers
        5 removed that pipeline; README "Question answering").

        Args:
            question: a question, or a list of them.
            context: a context, or a list (one per question); one context
                with a list of questions serves every question.
            top_k: answers per question, best first (fewer when the context
                holds fewer distinct answers).
            doc_stride: context tokens shared by consecutive windows of a
                long context; None: `min(max_seq_len // 2, 128)`.
            max_answer_len: the longest answer, in tokens.
            max_seq_len: window length with the question and special tokens;
                None: the preprocessor's `sequence_length`.
            max_question_len: accepted as the pipeline accepts it; its fast
                tokenizer path does not use it (only its slow-tokenizer path
                cuts the question), so a longer question is kept whole, as
                there. A question that leaves no more than `doc_stride`
                context tokens per window is an error naming it.
            handle_impossible_answer: also offer the empty answer `{"start":
                0, "end": 0, "answer": ""}`, scored by the smallest `[CLS]`
                start times end probability over the windows.

            max_answer_length: the earlier name of `max_answer_len`
                (deprecated; a warning says so).

        Returns what the pipeline returns: per question, the best answer
        dict when `top_k` is 1 or only one answer exists, else a list of
        them; one question (or lists of one) gives that result itself, more
        give a list of results.
        """
        method = f"{type(self).__name__}.answer"
        if self.preprocessor is None:
            raise ValueError(f"{method} needs a preprocessor (the model has none).")
        questions, contexts, single = self._question_context_pairs(question, context, method)
        top_k = check_top_k(top_k)
        if max_answer_length is not None:
            warnings.warn(
                f"{method}: max_answer_length is deprecated; pass max_answer_len (the pipeline's name).",
                DeprecationWarning,
                stacklevel=2,
            )
            max_answer_len = max_answer_length
        max_answer_len = positive_integer(max_answer_len, "max_answer_len", method)
        positive_integer(max_question_len, "max_question_len", method)
        if max_seq_len is None:
            max_seq_len = self.preprocessor.sequence_length
        max_seq_len = positive_integer(max_seq_len, "max_seq_len", method)
        if max_seq_len > self.backbone.max_sequence_length:
            raise ValueError(
                f"{method}: max_seq_len={max_seq_len} is more than the model's "
                f"{self.backbone.max_sequence_length} positions."
            )
        if doc_stride is None:
            doc_stride = min(max_seq_len // 2, 128)
        if isinstance(doc_stride, bool) or not isinstance(doc_stride, (int, np.integer)) or doc_stride < 0:
            raise ValueError(f"{method}: doc_stride must be an integer >= 0; got {doc_stride!r}.")
        if doc_stride >= max_seq_len:
            raise ValueError(
                f"{method}: doc_stride={doc_stride} must be less than max_seq_len={max_seq_len} (consecutive "
                "windows share doc_stride context tokens)."
            )
        windows = self.preprocessor.windows(questions, contexts, max_seq_len, int(doc_stride))
        rows = [encoding.ids for encoding in windows.encodings]
        logits = self._predict_rows(rows, batch_size)
        results = self.preprocessor.decode_answers(
            [x["start_logits"] for x in logits],
            [x["end_logits"] for x in logits],
            windows,
            top_k=top_k,
            handle_impossible_answer=bool(handle_impossible_answer),
            max_answer_len=max_answer_len,
        )
        results = [answers[0] if len(answers) == 1 else answers for answers in results]
        return results[0] if single else results

    @staticmethod
    def _question_context_pairs(question, context, method):
        """(questions, contexts, one result) as the pipeline pairs them: a
        list of one pair gives one result, as there."""
        questions = [as_text(question, "question", method)] if isinstance(question, TEXT_TYPES) else question
        if not isinstance(questions, (list, tuple)) or len(questions) == 0:
            raise TypeError(
                f"{method}: question must be a string or a non-empty list of strings; got {describe(question)}."
            )
        questions = [as_text(q, f"question[{i}]", method) for i, q in enumerate(questions)]
        if isinstance(context, TEXT_TYPES):
            contexts = [as_text(context, "context", method)] * len(questions)
        elif isinstance(context, (list, tuple)) and not isinstance(question, TEXT_TYPES):
            if len(context) != len(questions):
                raise ValueError(f"{method}: {len(questions)} questions but {len(context)} contexts.")
            contexts = [as_text(c, f"context[{i}]", method) for i, c in enumerate(context)]
        else:
            raise TypeError(
                f"{method}: context must be a string, or a list of strings beside a list of questions; got "
                f"{describe(context)}."
            )
        for name, texts in (("question", questions), ("context", contexts)):
            for i, text in enumerate(texts):
                if not text:
                    raise ValueError(f"{method}: {name} {i} is empty (the pipeline refuses an empty {name} too).")
        return questions, contexts, len(questions) == 1

    def get_config(self):
        return super().get_config() | {"dropout": self.dropout}
