import keras

from distilbert_hub.distilbert_tokenizer import DistilBertTokenizer


class Preprocessor:
    """Base of the preprocessors: a tokenizer plus settings, turning raw text
    into model inputs with numpy (no tf.data), serializable with Keras."""

    def __init__(self, tokenizer):
        if not isinstance(tokenizer, DistilBertTokenizer):
            raise TypeError(f"tokenizer must be a DistilBertTokenizer; got {type(tokenizer).__name__}.")
        self.tokenizer = tokenizer

    def get_config(self):
        return {"tokenizer": self.tokenizer.get_config()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["tokenizer"] = DistilBertTokenizer.from_config(config["tokenizer"])
        return cls(**config)

    def _finish(self, x, y, sample_weight):
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
