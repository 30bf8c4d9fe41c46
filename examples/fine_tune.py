"""Fine-tune the full-size smallest preset on a few hundred labelled sentences.

    tox -e checkpoints            # once: the preset checkpoint in .cache/hf-hub (seeded weights)
    HF_HUB_OFFLINE=1 HF_HUB_CACHE=.cache/hf-hub/hub KERAS_BACKEND=torch python examples/fine_tune.py

With a real Hugging Face cache the same code fine-tunes the pretrained model.
"""

import keras
import numpy as np

from distilbert_hub import DistilBertTextClassifier

keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
good = ["a wonderful", "a great", "an excellent", "a delightful", "a moving", "a brilliant"]
bad = ["a terrible", "a boring", "an awful", "a dull", "a tedious", "a dreadful"]
things = ["movie", "film", "story", "performance", "script", "ending", "soundtrack", "cast"]


def sentences(count):
    labels = rng.integers(0, 2, size=count)
    texts = [
        f"{rng.choice(good if label else bad)} {rng.choice(things)}, {rng.choice(['truly', 'really', 'so'])} "
        f"{rng.choice(['enjoyed', 'loved']) if label else rng.choice(['disliked', 'hated'])} it"
        for label in labels
    ]
    return texts, labels


train_texts, train_labels = sentences(320)
test_texts, test_labels = sentences(80)

classifier = DistilBertTextClassifier.from_preset("distil_bert_base_en_uncased", num_classes=2)  # fresh head
classifier.preprocessor.sequence_length = 24
classifier.compile(optimizer=keras.optimizers.Adam(3e-5))
classifier.fit(train_texts, train_labels, batch_size=16, epochs=2)  # Keras' progress bar
loss, accuracy = classifier.evaluate(test_texts, test_labels, batch_size=32, verbose=0)
print(f"held-out accuracy {accuracy:.3f} (loss {loss:.3f})")
