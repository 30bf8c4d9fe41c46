import keras
from keras import ops


@keras.saving.register_keras_serializable(package="distilbert_hub")
class FlattenChoices(keras.layers.Layer):
    """`[batch, num_choices, length]` -> `[batch * num_choices, length]`."""

    def call(self, x):
        return ops.reshape(x, (-1, ops.shape(x)[-1]))

    def compute_output_shape(self, shape):
        return (None, shape[-1])


@keras.saving.register_keras_serializable(package="distilbert_hub")
class UnflattenChoices(keras.layers.Layer):
    """`[batch * num_choices, 1]` scores -> `[batch, num_choices]`, the shape
    taken from the original `[batch, num_choices, length]` input."""

    def call(self, scores, reference):
        return ops.reshape(scores, ops.shape(reference)[:2])

    def compute_output_shape(self, scores_shape, reference_shape):
        return tuple(reference_shape[:2])
