import keras
import numpy as np

from distilbert_hub.preprocessing import check_sequence_length, check_truncate, pack, split_segments
from distilbert_hub.preprocessor import Preprocessor


@keras.saving.register_keras_serializable(package="distilbert_hub")
class DistilBertTextClassifierPreprocessor(Preprocessor):
    """Raw text (one segment, or a pair as a tuple) to classifier inputs.

    `preprocessor(x, y=None, sample_weight=None)` returns
    `{"token_ids", "padding_mask"}` (int32, `[batch, sequence_length]`), or the
    Keras `(x, y, sample_weight)` tuple when labels are given. Rows are
    `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`, padded with `[PAD]`.

    Args:
        tokenizer: a `DistilBertTokenizer`.
        sequence_length: packed length.
        truncate: KerasHub's `"round_robin"` (both segments cut to about half
            the budget, the first keeping the odd token) or `"waterfall"` (the
            last segment is cut first), or HF's `"longest_first"` (like
            round_robin, but the longer segment keeps the odd token, the
            second on a tie), `"only_first"`, `"only_second"`, each giving
            exactly the ids `transformers` gives.

    As in KerasHub, a tuple is a set of segments and a list is a batch:
    `("first", "second")` is one pair, `(firsts, seconds)` a batch of pairs.
    """

    def __init__(self, tokenizer, sequence_length=512, truncate="round_robin"):
        super().__init__(tokenizer)
        self.sequence_length = check_sequence_length(sequence_length, 3)
        self.truncate = check_truncate(truncate)

    def tokenize_and_pack(self, x):
        segments, single = split_segments(x)
        tokenized = [self.tokenizer(s) for s in segments]
        token_ids, padding_mask = pack(tokenized, self.sequence_length, self.truncate, self.tokenizer)
        return {"token_ids": token_ids, "padding_mask": padding_mask}, single

    def __call__(self, x, y=None, sample_weight=None):
        outputs, single = self.tokenize_and_pack(x)
        if single:
            outputs = {k: v[0] for k, v in outputs.items()}
        if y is not None:
            y = np.asarray(y)
            if single and y.ndim != 0 and y.size != 1:
                raise ValueError(f"{y.size} labels for one text; give one label (or a list of texts).")
            if not single and (y.ndim == 0 or len(y) != len(outputs["token_ids"])):
                count = 1 if y.ndim == 0 else len(y)
                raise ValueError(f"{count} labels for {len(outputs['token_ids'])} inputs.")
        return self._finish(outputs, y, sample_weight)

    def get_config(self):
        return super().get_config() | {"sequence_length": self.sequence_length, "truncate": self.truncate}
