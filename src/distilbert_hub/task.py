import keras
import numpy as np

from distilbert_hub.distilbert_backbone import DistilBertBackbone
from distilbert_hub.functional_model import FunctionalModel


def is_raw(x):
    """True for text (or a tuple of text batches) that needs the preprocessor."""
    if isinstance(x, dict) or x is None:
        return False
    if isinstance(x, tuple):
        return len(x) > 0 and all(is_raw(part) for part in x)
    if isinstance(x, (str, bytes, np.str_, np.bytes_)):
        return True
    if isinstance(x, np.ndarray):
        return x.dtype.kind in "USO"
    if isinstance(x, list):
        return len(x) > 0 and (is_raw(x[0]) or isinstance(x[0], list))
    return False


class Task(FunctionalModel):
    """Base of the task models: a backbone, a head and an optional
    preprocessor. `fit`, `predict` and `evaluate` take raw strings when a
    preprocessor is attached: it runs in numpy, so no tf.data or TensorFlow is
    needed on jax and torch."""

    def _setup_task(self, backbone, preprocessor):
        self.backbone = backbone
        self.preprocessor = preprocessor
        self._finish_init()

    # --- data -----------------------------------------------------------------

    def _preprocess(self, x, y=None, sample_weight=None):
        if not is_raw(x):
            return x, y, sample_weight
        if self.preprocessor is None:
            raise ValueError(f"{type(self).__name__} got raw text but has no preprocessor.")
        return keras.utils.unpack_x_y_sample_weight(self.preprocessor(x, y, sample_weight))

    def check_labels(self, y, x):
        """Raise on labels the head cannot produce (subclasses refine)."""

    def check_inputs(self, x):
        if isinstance(x, dict):
            self.backbone.check_inputs({k: x[k] for k in ("token_ids", "padding_mask") if k in x})

    def fit(self, x=None, y=None, batch_size=None, sample_weight=None, validation_data=None, **kwargs):
        x, y, sample_weight = self._preprocess(x, y, sample_weight)
        self.check_inputs(x)
        self.check_labels(y, x)
        if validation_data is not None:
            vx, vy, vw = keras.utils.unpack_x_y_sample_weight(validation_data)
            vx, vy, vw = self._preprocess(vx, vy, vw)
            self.check_labels(vy, vx)
            validation_data = keras.utils.pack_x_y_sample_weight(vx, vy, vw)
        return super().fit(
            x, y, batch_size=batch_size, sample_weight=sample_weight, validation_data=validation_data, **kwargs
        )

    def evaluate(self, x=None, y=None, batch_size=None, sample_weight=None, **kwargs):
        x, y, sample_weight = self._preprocess(x, y, sample_weight)
        self.check_inputs(x)
        self.check_labels(y, x)
        return super().evaluate(x, y, batch_size=batch_size, sample_weight=sample_weight, **kwargs)

    def predict(self, x, *args, **kwargs):
        x, _, _ = self._preprocess(x)
        return super().predict(x, *args, **kwargs)

    # --- config ---------------------------------------------------------------

    def get_config(self):
        return super().get_config() | {
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "preprocessor": keras.saving.serialize_keras_object(self.preprocessor) if self.preprocessor else None,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        if config.get("preprocessor") is not None:
            config["preprocessor"] = keras.saving.deserialize_keras_object(config["preprocessor"])
        return cls(**config)


def check_backbone(backbone):
    if not isinstance(backbone, DistilBertBackbone):
        raise TypeError(f"backbone must be a DistilBertBackbone; got {type(backbone).__name__}.")
    return backbone


def check_class_labels(y, num_classes, model_name, ignore=None):
    """Integer labels in [0, num_classes) (and `ignore`, if given)."""
    if y is None:
        return
    labels = np.asarray(y)
    if labels.dtype.kind not in "iu":
        return
    valid = (labels >= 0) & (labels < num_classes)
    if ignore is not None:
        valid |= labels == ignore
    if not valid.all():
        index = tuple(int(i) for i in np.argwhere(~valid)[0])
        raise ValueError(
            f"{model_name}: label {int(labels[index])} at index {index} is outside "
            f"[0, num_classes={num_classes})."
        )
