"""Every data source trains: raw strings as lists, numpy arrays, generators
and PyDatasets on every backend, tf.data on tensorflow and DataLoader on
torch; each batch is preprocessed and checked as it comes."""

import keras
import numpy as np
import pytest

import distilbert_hub as hub
from harness.testing import draw_head_at_glorot_scale, tiny_backbone_for

TEXTS = [
    "what a great movie",
    "truly wonderful acting",
    "i loved it",
    "a delight",
    "a terrible film",
    "boring and far too long",
    "i hated it",
    "the worst plot",
]
LABELS = np.array([1, 1, 1, 1, 0, 0, 0, 0])


@pytest.fixture
def classifier(tiny_tokenizer):
    keras.utils.set_random_seed(0)
    backbone = tiny_backbone_for(tiny_tokenizer, num_layers=1, max_sequence_length=12, dropout=0.0)
    model = hub.DistilBertTextClassifier(
        backbone, num_classes=2, dropout=0.0, preprocessor=hub.DistilBertTextClassifierPreprocessor(tiny_tokenizer, 10)
    )
    draw_head_at_glorot_scale(model)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


class RawBatches(keras.utils.PyDataset):
    def __len__(self):
        return 2

    def __getitem__(self, index):
        return TEXTS[index * 4 : (index + 1) * 4], LABELS[index * 4 : (index + 1) * 4]


def sources():
    found = {
        "list": lambda: dict(x=TEXTS, y=LABELS, batch_size=4),
        "numpy array": lambda: dict(x=np.array(TEXTS), y=LABELS, batch_size=4),
        "PyDataset of raw batches": lambda: dict(x=RawBatches()),
    }
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        found["tf.data.Dataset of strings"] = lambda: dict(
            x=tf.data.Dataset.from_tensor_slices((TEXTS, LABELS)).batch(4)
        )
    if backend == "torch":
        import torch.utils.data

        pairs = list(zip(TEXTS, LABELS.tolist()))
        found["torch DataLoader of strings"] = lambda: dict(
            x=torch.utils.data.DataLoader(
                pairs, batch_size=4, collate_fn=lambda b: ([t for t, _ in b], np.array([y for _, y in b]))
            )
        )
    return found


@pytest.mark.parametrize("source", sorted(sources()))
def test_each_source_trains_with_the_loss_going_down(classifier, source):
    history = classifier.fit(epochs=6, verbose=0, **sources()[source]())
    losses = history.history["loss"]
    assert losses[-1] < losses[0], f"{source}: loss {losses}"


def test_a_generator_of_raw_batches_trains(classifier):
    def batches():
        while True:
            for start in (0, 4):
                yield TEXTS[start : start + 4], LABELS[start : start + 4]

    history = classifier.fit(batches(), steps_per_epoch=2, epochs=6, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    predictions = classifier.predict((t for t in [TEXTS[:4], TEXTS[4:]]), verbose=0)
    assert predictions.shape == (8, 2)
