import keras
import numpy as np

from distilbert_hub.preprocessing import check_sequence_length, check_truncate, pack
from distilbert_hub.preprocessor import Preprocessor


@keras.saving.register_keras_serializable(package="distilbert_hub")
class DistilBertMultipleChoicePreprocessor(Preprocessor):
    """`(prompts, choices)` to multiple-choice inputs: every
    `[CLS] prompt [SEP] choice [SEP]` packed to `[batch, num_choices,
    sequence_length]`, as HF's multiple-choice recipe pairs them. `y`, if
    given, is the index of the right choice."""

    def __init__(self, tokenizer, sequence_length=512, truncate="longest_first"):
        super().__init__(tokenizer)
        self.sequence_length = check_sequence_length(sequence_length, 3)
        self.truncate = check_truncate(truncate)

    def __call__(self, x, y=None, sample_weight=None):
        if not (isinstance(x, tuple) and len(x) == 2):
            raise ValueError("DistilBertMultipleChoicePreprocessor takes x=(prompts, choices).")
        prompts, choices = x
        if isinstance(prompts, (str, bytes)):
            raise TypeError("DistilBertMultipleChoicePreprocessor: prompts must be a list of strings, got one string.")
        for row, choice_row in enumerate(choices):
            if isinstance(choice_row, (str, bytes)):
                raise TypeError(
                    f"DistilBertMultipleChoicePreprocessor: row {row} of choices is one string ({choice_row!r:.40}); "
                    "each row must be a list of choice strings (a string would be one choice per character)."
                )
        if len(prompts) != len(choices):
            raise ValueError(f"{len(prompts)} prompts but {len(choices)} rows of choices.")
        counts = {len(row) for row in choices}
        if len(counts) != 1 or 0 in counts:
            raise ValueError(f"every prompt needs the same, non-zero number of choices; got counts {sorted(counts)}.")
        num_choices = counts.pop()
        firsts = [p for p in prompts for _ in range(num_choices)]
        seconds = [c for row in choices for c in row]
        token_ids, padding_mask = pack(
            [self.tokenizer(firsts), self.tokenizer(seconds)], self.sequence_length, self.truncate, self.tokenizer
        )
        shape = (len(prompts), num_choices, self.sequence_length)
        inputs = {"token_ids": token_ids.reshape(shape), "padding_mask": padding_mask.reshape(shape)}
        if y is not None:
            y = np.asarray(y)
            if ((y < 0) | (y >= num_choices)).any():
                raise ValueError(f"labels must be choice indices in [0, {num_choices}); got {y.tolist()}.")
        return self._finish(inputs, y, sample_weight)

    def get_config(self):
        return super().get_config() | {"sequence_length": self.sequence_length, "truncate": self.truncate}
