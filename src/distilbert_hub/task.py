import collections.abc

import keras
import numpy as np
from keras.utils import pad_sequences

from distilbert_hub import preset_utils
from distilbert_hub.data import (
    CheckedPyDataset,
    IteratedBatches,
    RawTextBatches,
    batch_errors,
    host_values,
    is_batch_source,
    is_lazy,
    is_raw,
    text_lengths,
    unsort,
)
from distilbert_hub.distilbert_backbone import DistilBertBackbone, quantized_policy_map
from distilbert_hub.functional_model import FunctionalModel, attribute_set_to
from distilbert_hub.inference import strategy_for


class Task(FunctionalModel):
    """Base of the task models: a backbone, a head and an optional
    preprocessor. `fit`, `predict` and `evaluate` take raw strings when a
    preprocessor is attached: it runs in numpy, so no tf.data or TensorFlow is
    needed on jax and torch.

    Each task declares its default preprocessor class; the `transformers`
    class it equals and its head's weights under HF names are in
    `convert.hf_heads.HEADS`, which the loaders and the exporter read.
    """

    preprocessor_cls = None
    # One output row per example and no token axis in the output: `predict`
    # on raw text may group examples by length and trim each batch's padding.
    predicts_by_length = False
    # Which positions of the backbone's output the head reads
    # (`distilbert_hub.inference.READS`): `predict` may skip the work for the
    # others. "first_token" for heads that read `[:, 0]` alone, "real_tokens"
    # for those that never read padding.
    reads = "every_token"
    # What `predict_on_batch` reads while a pipeline method runs (`_reading`).
    _predict_reads = None

    def compile(self, optimizer="auto", loss="auto", metrics="auto", weighted_metrics="auto", **kwargs):
        """Keras' compile; "auto" takes Adam(5e-5) and the task's
        `compile_defaults()` (its loss, metrics and loss weights)."""
        defaults = self.compile_defaults()
        chosen = {"optimizer": optimizer, "loss": loss, "metrics": metrics, "weighted_metrics": weighted_metrics}
        chosen = {k: (defaults.get(k) if v == "auto" else v) for k, v in chosen.items()}
        if chosen["optimizer"] is None:
            chosen["optimizer"] = keras.optimizers.Adam(5e-5)
        if "loss_weights" in defaults:
            kwargs.setdefault("loss_weights", defaults["loss_weights"])
        # Keras wraps the optimizer for loss scaling when the *model's* policy
        # is mixed_float16; a task's policy is its backbone's layers', so the
        # wrapping is done here (float16 gradients underflow without it).
        optimizer = chosen["optimizer"]
        if (
            self.backbone.dtype_policy.name == "mixed_float16"
            and kwargs.get("auto_scale_loss", True)
            and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        ):
            chosen["optimizer"] = keras.optimizers.LossScaleOptimizer(keras.optimizers.get(optimizer))
        super().compile(**chosen, **kwargs)

    def enable_lora(self, rank, target_names=("query", "value"), lora_alpha=None):
        """LoRA on the backbone (`DistilBertBackbone.enable_lora`); the head stays trainable."""
        self.backbone.enable_lora(rank, target_names, lora_alpha=lora_alpha)

    def merge_lora_weights(self):
        """`DistilBertBackbone.merge_lora_weights`: a plain task model again."""
        self.backbone.merge_lora_weights()
        self.predict_function = self.train_function = self.test_function = None

    def compile_defaults(self):
        """The task's default loss and metrics (and loss weights) for `compile`."""
        raise NotImplementedError

    # Deprecated: the HF head table (`convert.hf_heads.HEADS`) holds these now.
    hf_architecture = preset_utils.DeprecatedAlias("convert.hf_heads.architecture_of(task_cls)", "value")
    head_weight_entries = preset_utils.DeprecatedAlias("convert.hf_weights.head_weight_entries(task)", "method")
    head_kwargs_from_hf_config = preset_utils.DeprecatedAlias(
        "convert.hf_config.head_kwargs_from_hf_config(task_cls, hf_config)", "classmethod"
    )
    hf_config_updates = preset_utils.DeprecatedAlias("convert.hf_config.hf_config_from_task(task)", "method")

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """A task from a preset name, `hf://org/name`, an HF checkpoint
        directory or a directory written by `save_to_preset`. The head is
        ported when the checkpoint holds one for this task; otherwise it is
        freshly initialized (with a warning). A tokenizer in the checkpoint
        gives the default preprocessor (pass `preprocessor=None` to skip)."""
        return preset_utils.get_preset_loader(preset).load_task(cls, load_weights=load_weights, **kwargs)

    def save_to_preset(self, preset_dir):
        """Config, weights, preprocessor and vocabulary in a new directory."""
        preset_utils.get_preset_saver(preset_dir).save_task(self)

    def export_to_transformers(self, path):
        """A directory `transformers.AutoModelFor*` (and, with a preprocessor,
        `AutoTokenizer`) loads with `from_pretrained`."""
        preset_utils.export_to_transformers(self, path)

    def _setup_task(self, backbone, preprocessor):
        tokenizer = getattr(preprocessor, "tokenizer", None)
        if tokenizer is not None and tokenizer.vocabulary_size() != backbone.vocabulary_size:
            raise ValueError(
                f"{type(self).__name__}: the preprocessor's tokenizer has {tokenizer.vocabulary_size()} tokens but "
                f"the backbone's vocabulary_size is {backbone.vocabulary_size}; they must be the same vocabulary."
            )
        self.backbone = backbone
        self.preprocessor = preprocessor
        self._finish_init()

    # --- data -----------------------------------------------------------------

    def check_inputs(self, x):
        if not isinstance(x, dict):
            raise TypeError(
                f"{type(self).__name__} takes raw text (with a preprocessor) or a dict of model "
                f"inputs; got {type(x).__name__}."
            )
        self.backbone.check_inputs({k: x.get(k) for k in ("token_ids", "padding_mask")})

    def _checked(self, x, y=None, sample_weight=None):
        """Data preprocessed (if raw) and checked."""
        if is_raw(x):
            if self.preprocessor is None:
                raise ValueError(f"{type(self).__name__} got raw text but has no preprocessor.")
            x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(self.preprocessor(x, y, sample_weight))
        self.check_inputs(x)
        self.check_labels(y, x)
        return x, y, sample_weight

    def _calibration_batches(self, calibration):
        """`quantize`'s calibration data; raw text is preprocessed, in batches of 32."""
        if not is_raw(calibration):
            return super()._calibration_batches(calibration)
        x = self._checked(calibration)[0]
        rows = len(keras.tree.flatten(x)[0])
        return [keras.tree.map_structure(lambda value, i=i: value[i : i + 32], x) for i in range(0, rows, 32)]

    def _prepared(self, x, y=None, sample_weight=None):
        """One batch `_checked`, as Keras takes it."""
        x, y, sample_weight = self._checked(x, y, sample_weight)
        return (x,) if y is None and sample_weight is None else keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    def _checked_batch(self, batch):
        """One batch from a generator or dataset, preprocessed if raw and checked."""
        if is_raw(batch) or not isinstance(batch, tuple):  # text alone (no labels), or inputs alone
            batch = (batch,)
        batch = tuple(part if isinstance(part, list) else keras.tree.map_structure(host_values, part) for part in batch)
        return self._prepared(*keras.utils.unpack_x_y_sample_weight(batch))

    def _data(self, x, y, sample_weight, batch_size=None, shuffle=False):
        """Raw text as batches preprocessed one at a time (reshuffled each
        epoch when `shuffle`); generators and datasets wrapped so that each
        batch is preprocessed and checked as it comes; arrays checked now."""
        if is_raw(x) and self.preprocessor is not None:
            return RawTextBatches(x, y, sample_weight, batch_size or 32, shuffle, self._prepared), None, None
        if isinstance(x, keras.utils.PyDataset):
            return CheckedPyDataset(x, self._checked_batch), y, sample_weight
        if isinstance(x, collections.abc.Iterator):
            return (self._checked_batch(batch) for batch in x), y, sample_weight
        if is_batch_source(x):  # a tf.data.Dataset, a torch DataLoader: re-iterable, sized
            return CheckedPyDataset(IteratedBatches(x), self._checked_batch), y, sample_weight
        return self._checked(x, y, sample_weight)

    def fit(self, x=None, y=None, batch_size=None, sample_weight=None, validation_data=None, shuffle=True, **kwargs):
        data, raw = (x, validation_data), is_raw(x)
        x, y, sample_weight = self._data(x, y, sample_weight, batch_size, shuffle)
        if validation_data is not None:
            parts = (validation_data,) if is_lazy(validation_data) else validation_data
            validation_data = keras.utils.pack_x_y_sample_weight(
                *self._data(*keras.utils.unpack_x_y_sample_weight(parts), batch_size)
            )
        with batch_errors(self, *data):
            return super().fit(
                x,
                y,
                batch_size=None if raw else batch_size,
                sample_weight=sample_weight,
                validation_data=validation_data,
                shuffle=shuffle,
                **kwargs,
            )

    def evaluate(self, x=None, y=None, batch_size=None, sample_weight=None, **kwargs):
        data, raw = x, is_raw(x)
        x, y, sample_weight = self._data(x, y, sample_weight, batch_size)
        with batch_errors(self, data):
            return super().evaluate(x, y, batch_size=None if raw else batch_size, sample_weight=sample_weight, **kwargs)

    def predict(self, x, batch_size=None, *args, **kwargs):
        """Keras' `predict`; raw text is preprocessed batch by batch. For the
        classifiers (`predicts_by_length`), raw text is grouped by length
        (longest first, like sentence-transformers) and each batch padded only
        to its longest row; outputs come back in the caller's order. The
        backbone runs through the inference strategy for what the head
        `reads` (`distilbert_hub.inference.strategy_for`)."""
        raw = is_raw(x)
        if raw and self.preprocessor is not None and self.predicts_by_length:
            return self._predict_by_length(x, batch_size or 32, kwargs.get("verbose", "auto"))
        data, _, _ = self._data(x, None, None, batch_size)
        with batch_errors(self, x):
            return keras.Model.predict(self, data, None if raw else batch_size, *args, **kwargs)

    def predict_step(self, *args, **kwargs):
        # jax's takes (state, data), the others (data). The strategy holds for
        # the step's trace (jax, tensorflow) or run (torch).
        with self.backbone.inference(strategy_for(self._predict_reads or self.reads)):
            return super().predict_step(*args, **kwargs)

    def _reading(self, reads):
        """Within this block `predict_on_batch` lets the backbone compute
        `reads` only (a pipeline method that decodes real tokens alone)."""
        return attribute_set_to(self, "_predict_reads", reads)

    def _predict_by_length(self, x, batch_size, verbose):
        """Batch by batch with `predict_on_batch`: Keras' data adapters fix
        each input's shape from the first batches (tensorflow), and these
        batches change width."""
        data = RawTextBatches(x, None, None, batch_size, False, self._prepared_trimmed)
        data.order = np.argsort(-text_lengths(data.x), kind="stable")
        progress = keras.utils.Progbar(len(data), verbose=int(verbose not in (0, "0", False)))
        outputs = []
        for index in range(len(data)):
            (batch,) = data[index]
            outputs.append(keras.tree.map_structure(np.asarray, self.predict_on_batch(batch)))
            progress.update(index + 1)
        outputs = keras.tree.map_structure(lambda *parts: np.concatenate(parts), *outputs)
        return keras.tree.map_structure(lambda values: unsort(values, data.order), outputs)

    def _prepared_trimmed(self, x, y=None, sample_weight=None):
        """`_prepared`, with the padding columns past the batch's longest row
        (rounded up by `padded_width`) cut."""
        (x,) = self._prepared(x, y, sample_weight)
        keep = min(padded_width(int(np.max(np.sum(x["padding_mask"], axis=-1)))), x["padding_mask"].shape[-1])
        return ({key: value[..., :keep] for key, value in x.items()},)

    def _predict_rows(self, rows, batch_size=32, mask_positions=None):
        """The model's outputs for each row of token ids (special tokens
        included), as numpy, one tree per row in the caller's order. Rows are
        grouped by length and each batch padded to its longest row (rounded
        up by `padded_width`); `mask_positions` (one list per row) is padded
        with position 0. The callers decode real tokens only, so on torch the
        backbone runs them alone (`_reading`)."""
        batch_size = int(batch_size)
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
        pad_id = self.preprocessor.tokenizer.pad_token_id
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
        results = [None] * len(rows)
        for begin in range(0, len(order), batch_size):
            chosen = order[begin : begin + batch_size]
            width = padded_width(max(len(rows[i]) for i in chosen))
            x = {
                "token_ids": pad_sequences([rows[i] for i in chosen], width, "int32", "post", value=pad_id),
                "padding_mask": pad_sequences([[1] * len(rows[i]) for i in chosen], width, "int32", "post"),
            }
            if mask_positions is not None:  # as long as the batch's longest list
                x["mask_positions"] = pad_sequences([mask_positions[i] for i in chosen], None, "int32", "post")
            with self._reading("first_token" if self.reads == "first_token" else "real_tokens"):
                outputs = keras.tree.map_structure(np.asarray, self.predict_on_batch(x))
            for row, i in enumerate(chosen):
                results[i] = keras.tree.map_structure(lambda value, row=row: value[row], outputs)
        return results

    # --- config ---------------------------------------------------------------

    def get_config(self):
        backbone = keras.saving.serialize_keras_object(self.backbone)
        # The head's layers take the backbone's dtype: a quantized head is
        # kept through the backbone's policy map, looked up by layer path.
        policy_map = quantized_policy_map(self.backbone, self._flatten_layers(include_self=False))
        if policy_map is not None:
            backbone["config"]["dtype"] = keras.dtype_policies.serialize(policy_map)
        return super().get_config() | {
            "backbone": backbone,
            "preprocessor": keras.saving.serialize_keras_object(self.preprocessor) if self.preprocessor else None,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        if config.get("preprocessor") is not None:
            config["preprocessor"] = keras.saving.deserialize_keras_object(config["preprocessor"])
        return cls(**config)


def padded_width(longest):
    """`longest` rounded up to a multiple of 16 on jax and tensorflow, which
    compile once per width; torch runs eagerly and takes it exact."""
    multiple = 1 if keras.backend.backend() == "torch" else 16
    return -(-longest // multiple) * multiple


def check_backbone(backbone):
    if not isinstance(backbone, DistilBertBackbone):
        raise TypeError(f"backbone must be a DistilBertBackbone; got {type(backbone).__name__}.")
    return backbone


def default_id2label(num_classes):
    return {str(i): f"LABEL_{i}" for i in range(num_classes)}


def check_id2label(id2label, num_classes, owner):
    """`id2label` with string keys "0".."num_classes-1" (as JSON keeps them),
    or None for transformers' default names."""
    if id2label is None:
        return None
    if not isinstance(id2label, dict):
        raise TypeError(f"{owner}: id2label must be a dict of class id to label name; got {type(id2label).__name__}.")
    try:
        labels = {str(int(key)): value for key, value in id2label.items()}
    except (TypeError, ValueError):
        raise ValueError(
            f"{owner}: id2label keys must be class ids 0..{num_classes - 1}; got {list(id2label)}."
        ) from None
    if set(labels) != {str(i) for i in range(num_classes)}:
        raise ValueError(
            f"{owner}: id2label must name each of the {num_classes} classes 0..{num_classes - 1}; got keys "
            f"{sorted(labels, key=int)}."
        )
    for key, value in labels.items():
        if not isinstance(value, str):
            raise TypeError(f"{owner}: id2label[{key}] must be a str; got {type(value).__name__} {value!r}.")
    return {str(i): labels[str(i)] for i in range(num_classes)}
