import keras

from distilbert_hub import preset_utils
from distilbert_hub.distilbert_tokenizer import DistilBertTokenizer


class Preprocessor:
    """Base of the preprocessors: a tokenizer plus settings, turning raw text
    into model inputs with numpy (no tf.data), serializable with Keras."""

    def __init__(self, tokenizer):
        if not isinstance(tokenizer, DistilBertTokenizer):
            raise TypeError(f"tokenizer must be a DistilBertTokenizer; got {type(tokenizer).__name__}.")
        self.tokenizer = tokenizer

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """A preprocessor with the tokenizer of a preset (see
        `DistilBertTokenizer.from_preset`); `kwargs` set its options."""
        return preset_utils.get_preset_loader(preset).load_preprocessor(cls, **kwargs)

    def save_to_preset(self, preset_dir):
        preset_utils.get_preset_saver(preset_dir).save_preprocessor(self)

    def get_config(self):
        return {"tokenizer": keras.saving.serialize_keras_object(self.tokenizer)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        tokenizer = config["tokenizer"]
        if isinstance(tokenizer, dict) and "class_name" in tokenizer:  # keeps a tokenizer subclass
            config["tokenizer"] = keras.saving.deserialize_keras_object(tokenizer)
        else:  # a bare tokenizer config
            config["tokenizer"] = DistilBertTokenizer.from_config(tokenizer)
        return cls(**config)

    def _finish(self, x, y, sample_weight):
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
