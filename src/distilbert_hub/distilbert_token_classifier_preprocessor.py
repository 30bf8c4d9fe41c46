import keras
import numpy as np

from distilbert_hub.preprocessing import check_sequence_length
from distilbert_hub.preprocessor import Preprocessor


@keras.saving.register_keras_serializable(package="distilbert_hub")
class DistilBertTokenClassifierPreprocessor(Preprocessor):
    """Pre-split words (and word-level labels) to token-classifier data.

    `x` is a batch of word lists; `y`, if given, one label per word. Word
    pieces are labelled as `transformers`' token-classification recipe does:
    the first piece of a word carries its label; the other pieces, `[CLS]`,
    `[SEP]` and padding get sample weight 0 (HF's -100), or, with
    `label_all_word_pieces=True`, every piece carries its word's label.
    Words beyond `sequence_length` are cut.
    """

    def __init__(self, tokenizer, sequence_length=512, label_all_word_pieces=False):
        super().__init__(tokenizer)
        self.sequence_length = check_sequence_length(sequence_length, 3)
        self.label_all_word_pieces = bool(label_all_word_pieces)

    def __call__(self, x, y=None, sample_weight=None):
        encoded = self.tokenizer.tokenize_words(x)
        if y is not None and len(y) != len(encoded):
            raise ValueError(f"{len(y)} label rows for {len(encoded)} inputs.")
        batch, length = len(encoded), self.sequence_length
        token_ids = np.full((batch, length), self.tokenizer.pad_token_id, np.int32)
        padding_mask = np.zeros((batch, length), np.int32)
        word_ids = np.full((batch, length), -1, np.int32)
        for row, (ids, words) in enumerate(encoded):
            ids, words = ids[: length - 2], words[: length - 2]
            n = len(ids) + 2
            token_ids[row, :n] = np.concatenate([[self.tokenizer.cls_token_id], ids, [self.tokenizer.sep_token_id]])
            padding_mask[row, :n] = 1
            word_ids[row, 1 : n - 1] = words
        inputs = {"token_ids": token_ids, "padding_mask": padding_mask}
        if y is None:
            return self._finish(inputs, None, sample_weight)
        labels = np.zeros((batch, length), np.int32)
        weights = np.zeros((batch, length), np.float32)
        for row, word_labels in enumerate(y):
            word_labels = np.asarray(word_labels)
            if len(word_labels) != len(x[row]):
                raise ValueError(f"row {row}: {len(word_labels)} labels for {len(x[row])} words.")
            for position in range(length):
                word = word_ids[row, position]
                if word < 0:
                    continue
                first_piece = position == 0 or word_ids[row, position - 1] != word
                if first_piece or self.label_all_word_pieces:
                    labels[row, position] = word_labels[word]
                    weights[row, position] = 1.0
        return self._finish(inputs, labels, weights)

    def get_config(self):
        return super().get_config() | {
            "sequence_length": self.sequence_length,
            "label_all_word_pieces": self.label_all_word_pieces,
        }
