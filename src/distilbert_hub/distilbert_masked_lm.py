import warnings

import keras
import numpy as np

from distilbert_hub.distilbert_masked_lm_preprocessor import DistilBertMaskedLMPreprocessor
from distilbert_hub.input_checks import check_class_labels, check_mask_positions, leading_shape
from distilbert_hub.layers.distilbert_masked_lm_head import DistilBertMaskedLMHead
from distilbert_hub.pipeline_outputs import as_text, check_fits, check_top_k, softmax, texts_argument
from distilbert_hub.task import Task, check_backbone


@keras.saving.register_keras_serializable(package="distilbert_hub")
class DistilBertMaskedLM(Task):
    """Masked language modelling, equal to `DistilBertForMaskedLM` at the
    masked positions.

    Inputs `token_ids`, `padding_mask` `[batch, length]` and `mask_positions`
    `[batch, num_positions]`; output logits `[batch, num_positions,
    vocabulary_size]`. The projection is tied to the token embedding.
    """

    preprocessor_cls = DistilBertMaskedLMPreprocessor

    def __init__(self, backbone, preprocessor=None, **kwargs):
        check_backbone(backbone)

        # === Layers ===
        self.masked_lm_head = DistilBertMaskedLMHead(
            vocabulary_size=backbone.vocabulary_size,
            hidden_dim=backbone.hidden_dim,
            activation=backbone.activation,
            embedding_layer=backbone.embeddings,
            dtype=backbone.dtype_policy,
            name="mlm_head",
        )

        # === Functional Model ===
        inputs = {
            **backbone.input,
            "mask_positions": keras.Input(shape=(None,), dtype="int32", name="mask_positions"),
        }
        hidden_states = backbone({k: inputs[k] for k in ("token_ids", "padding_mask")})
        outputs = self.masked_lm_head(hidden_states, inputs["mask_positions"])
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self._setup_task(backbone, preprocessor)

    def check_inputs(self, x):
        super().check_inputs(x)
        if isinstance(x, dict) and "mask_positions" in x:
            check_mask_positions(x, type(self).__name__)

    def check_labels(self, y, x):
        check_class_labels(
            y, self.backbone.vocabulary_size, type(self).__name__, shape=leading_shape(x, "mask_positions", 2)
        )

    def compile_defaults(self):
        """Cross-entropy on logits averaged over the masked positions with a weight
        (transformers averages over the labels that are not -100, never over
        padding slots); accuracy weighted by the mask weights."""
        return {
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight"),
            "weighted_metrics": [keras.metrics.SparseCategoricalAccuracy()],
        }

    # --- fill-mask as transformers' pipeline -------------------------------------

    def fill_mask(self, inputs, top_k=5, targets=None, batch_size=32):
        """The likeliest tokens for each `[MASK]`, equal to transformers'
        `pipeline("fill-mask")`.

        Returns, per text, a list of `top_k` dicts `{"score", "token",
        "token_str", "sequence"}` by decreasing score, or with several
        `[MASK]`s one such list per mask (each mask scored on its own, its
        `sequence` keeping the special tokens, as the pipeline decodes it). A
        single text gives its result, a list of texts a list of results.

        `targets` (a token or a list) limits the candidates; a target that is
        not a vocabulary entry is tokenized and its first piece taken, with a
        warning (the pipeline's documented behaviour); one that gives no piece
        is ignored with a warning. Duplicates count once; `top_k` is capped at
        the number of targets. A literal "[MASK]" in the text is always the
        mask token, whatever the tokenizer's `special_tokens_in_strings`.
        """
        method = f"{type(self).__name__}.fill_mask"
        if self.preprocessor is None:
            raise ValueError(f"{method} needs a preprocessor (the model has none).")
        tokenizer = self.preprocessor.tokenizer
        texts, single = texts_argument(inputs, method)
        top_k = check_top_k(top_k)
        target_ids = self._target_ids(targets, method) if targets is not None else None
        if target_ids is None and top_k > tokenizer.vocabulary_size():
            raise ValueError(f"{method}: top_k={top_k} is more than the {tokenizer.vocabulary_size()} tokens.")
        top_k = min(top_k, len(target_ids)) if target_ids is not None else top_k
        rows, positions = [], []
        for i, encoding in enumerate(tokenizer.encode_packed(texts, special_tokens_in_strings=True)):
            where = np.flatnonzero(np.asarray(encoding.ids) == tokenizer.mask_token_id)
            if len(where) == 0:
                raise ValueError(f"{method}: inputs[{i}] has no mask token ({tokenizer.mask_token}): {texts[i]!r:.80}.")
            rows.append(list(encoding.ids))
            positions.append(where.tolist())
        check_fits(rows, self.preprocessor.sequence_length, method)
        results = []
        for row, where, logits in zip(rows, positions, self._predict_rows(rows, batch_size, positions)):
            probabilities = softmax(logits[: len(where)])
            single_mask = len(where) == 1
            per_mask = []
            for position, probs in zip(where, probabilities):
                candidates = probs if target_ids is None else probs[target_ids]
                best = np.argsort(-candidates, kind="stable")[:top_k]
                proposals = []
                for choice in best:
                    token = int(choice if target_ids is None else target_ids[choice])
                    filled = np.asarray(row)
                    filled[position] = token
                    filled = filled[filled != tokenizer.pad_token_id]
                    proposals.append(
                        {
                            "score": float(candidates[choice]),
                            "token": token,
                            "token_str": tokenizer.detokenize([token]),
                            "sequence": tokenizer.detokenize(filled, skip_special_tokens=single_mask),
                        }
                    )
                per_mask.append(proposals)
            results.append(per_mask[0] if single_mask else per_mask)
        return results[0] if single else results

    def _target_ids(self, targets, method):
        """The pipeline's `get_target_ids`: vocabulary entries as they are,
        other words by their first word piece (with a warning), duplicates
        once, in the order `list(set(ids))` gives."""
        tokenizer = self.preprocessor.tokenizer
        targets = [targets] if isinstance(targets, str) else targets
        if not isinstance(targets, (list, tuple)):
            raise TypeError(f"{method}: targets must be a string or a list of strings; got {type(targets).__name__}.")
        vocabulary = {token: i for i, token in enumerate(tokenizer.get_vocabulary())}
        ids = []
        for i, target in enumerate(targets):
            target = as_text(target, f"targets[{i}]", method)
            if target in vocabulary:
                ids.append(vocabulary[target])
                continue
            pieces = tokenizer.encode_packed(target).ids[1:-1]
            if not pieces:
                warnings.warn(
                    f"{method}: the target {target!r} is not in the vocabulary and gives no token; it is ignored.",
                    stacklevel=3,
                )
                continue
            warnings.warn(
                f"{method}: the target {target!r} is not in the vocabulary; it is replaced by its first word piece "
                f"{tokenizer.id_to_token(pieces[0])!r}, as transformers' pipeline does.",
                stacklevel=3,
            )
            ids.append(pieces[0])
        if not ids:
            raise ValueError(f"{method}: targets gave no token; pass at least one target in the vocabulary.")
        return np.asarray(list(set(ids)), np.int64)
