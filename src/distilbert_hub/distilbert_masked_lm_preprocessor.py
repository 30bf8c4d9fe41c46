import keras
import numpy as np

from distilbert_hub.distilbert_text_classifier_preprocessor import DistilBertTextClassifierPreprocessor


@keras.saving.register_keras_serializable(package="distilbert_hub")
class DistilBertMaskedLMPreprocessor(DistilBertTextClassifierPreprocessor):
    """Raw text to masked-LM training data, with dynamic masking in numpy.

    Packs like `DistilBertTextClassifierPreprocessor`, then each real
    non-special token is selected with probability `mask_selection_rate`
    (at most `mask_selection_length` per row); a selected token becomes
    `[MASK]` with probability `mask_token_rate`, a uniformly random id with
    probability `random_token_rate`, and stays otherwise. `[CLS]`, `[SEP]`
    and padding are never selected. Returns
    `({"token_ids", "padding_mask", "mask_positions"}, mask_ids, mask_weights)`.
    A `seed` makes the masking reproducible.
    """

    def __init__(
        self,
        tokenizer,
        sequence_length=512,
        truncate="round_robin",
        mask_selection_rate=0.15,
        mask_selection_length=96,
        mask_token_rate=0.8,
        random_token_rate=0.1,
        seed=None,
    ):
        super().__init__(tokenizer, sequence_length, truncate)
        for name, rate in (
            ("mask_selection_rate", mask_selection_rate),
            ("mask_token_rate", mask_token_rate),
            ("random_token_rate", random_token_rate),
        ):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]; got {rate!r}.")
        if mask_token_rate + random_token_rate > 1.0:
            raise ValueError(
                f"mask_token_rate + random_token_rate must be <= 1; got {mask_token_rate} + {random_token_rate}."
            )
        if int(mask_selection_length) != mask_selection_length or mask_selection_length < 1:
            raise ValueError(f"mask_selection_length must be a positive integer; got {mask_selection_length!r}.")
        self.mask_selection_rate = mask_selection_rate
        self.mask_selection_length = int(mask_selection_length)
        self.mask_token_rate = mask_token_rate
        self.random_token_rate = random_token_rate
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def mask(self, token_ids, padding_mask):
        special = np.isin(token_ids, [self.tokenizer.cls_token_id, self.tokenizer.sep_token_id])
        eligible = (padding_mask == 1) & ~special
        batch = token_ids.shape[0]
        masked = token_ids.copy()
        positions = np.zeros((batch, self.mask_selection_length), np.int32)
        mask_ids = np.zeros((batch, self.mask_selection_length), np.int32)
        weights = np.zeros((batch, self.mask_selection_length), np.float32)
        for row in range(batch):
            candidates = np.flatnonzero(eligible[row])
            chosen = candidates[self._rng.random(len(candidates)) < self.mask_selection_rate]
            if len(chosen) > self.mask_selection_length:
                chosen = np.sort(self._rng.choice(chosen, self.mask_selection_length, replace=False))
            n = len(chosen)
            positions[row, :n], mask_ids[row, :n], weights[row, :n] = chosen, token_ids[row, chosen], 1.0
            draw = self._rng.random(n)
            to_mask = draw < self.mask_token_rate
            to_random = (draw >= self.mask_token_rate) & (draw < self.mask_token_rate + self.random_token_rate)
            masked[row, chosen[to_mask]] = self.tokenizer.mask_token_id
            masked[row, chosen[to_random]] = self._rng.integers(
                0, self.tokenizer.vocabulary_size(), size=int(to_random.sum())
            )
        return masked, positions, mask_ids, weights

    def __call__(self, x, y=None, sample_weight=None):
        if y is not None or sample_weight is not None:
            raise ValueError("DistilBertMaskedLMPreprocessor makes its own labels; pass only text.")
        outputs, single = self.tokenize_and_pack(x)
        masked, positions, mask_ids, weights = self.mask(outputs["token_ids"], outputs["padding_mask"])
        x = {"token_ids": masked, "padding_mask": outputs["padding_mask"], "mask_positions": positions}
        if single:
            x, mask_ids, weights = {k: v[0] for k, v in x.items()}, mask_ids[0], weights[0]
        return self._finish(x, mask_ids, weights)

    def get_config(self):
        return super().get_config() | {
            "mask_selection_rate": self.mask_selection_rate,
            "mask_selection_length": self.mask_selection_length,
            "mask_token_rate": self.mask_token_rate,
            "random_token_rate": self.random_token_rate,
            "seed": self.seed,
        }
