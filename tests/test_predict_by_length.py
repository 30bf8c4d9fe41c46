"""`predict` on raw text groups examples by length and pads each batch only to
its longest row, and returns what full padding gives, in the caller's order."""

import keras
import numpy as np

import distilbert_hub as hub
from harness.testing import tiny_backbone_for
from tests.conftest import TINY_WORDS


def mixed_length_texts(count, seed=0):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(TINY_WORDS, rng.integers(1, 30))) for _ in range(count)]


def test_length_grouped_predict_equals_full_padding_in_the_callers_order(tiny_tokenizer):
    keras.utils.set_random_seed(0)
    preprocessor = hub.DistilBertTextClassifierPreprocessor(tiny_tokenizer, sequence_length=40)
    backbone = tiny_backbone_for(tiny_tokenizer, max_sequence_length=40)
    classifier = hub.DistilBertTextClassifier(backbone, num_classes=3, preprocessor=preprocessor)
    texts = mixed_length_texts(37)
    widths = []
    prepare = classifier._prepared_trimmed

    def recording_prepare(*args):
        (x,) = prepare(*args)
        widths.append(x["token_ids"].shape[1])
        return (x,)

    classifier._prepared_trimmed = recording_prepare
    grouped = classifier.predict(texts, batch_size=8, verbose=0)
    full = classifier.predict(preprocessor(texts), batch_size=8, verbose=0)
    np.testing.assert_allclose(grouped, full, atol=1e-5)
    assert sorted(widths, reverse=True) == widths and widths[-1] < 40, widths  # longest first, then narrower


def test_multiple_choice_groups_by_length_too(tiny_tokenizer):
    keras.utils.set_random_seed(0)
    preprocessor = hub.DistilBertMultipleChoicePreprocessor(tiny_tokenizer, sequence_length=24)
    backbone = tiny_backbone_for(tiny_tokenizer, max_sequence_length=24)
    model = hub.DistilBertMultipleChoice(backbone, preprocessor=preprocessor)
    prompts = mixed_length_texts(9, seed=1)
    choices = [mixed_length_texts(3, seed=i) for i in range(9)]
    grouped = model.predict((prompts, choices), batch_size=4, verbose=0)
    full = model.predict(preprocessor((prompts, choices)), batch_size=4, verbose=0)
    np.testing.assert_allclose(grouped, full, atol=1e-5)
