import numpy as np
import pytest


@pytest.fixture
def tiny_backbone_kwargs():
    """The harness's tiny backbone over 50 ids, 12 positions (the backbone's
    own error tests name both numbers)."""
    from harness.testing import tiny_backbone_kwargs

    return tiny_backbone_kwargs(50, max_sequence_length=12)


@pytest.fixture
def token_inputs():
    rng = np.random.default_rng(0)
    token_ids = rng.integers(1, 50, size=(2, 7)).astype("int32")
    padding_mask = np.ones((2, 7), dtype="int32")
    padding_mask[1, 4:] = 0
    token_ids[1, 4:] = 0
    return {"token_ids": token_ids, "padding_mask": padding_mask}


def pytest_ignore_collect(collection_path, config):
    # tests/crosscheck imports transformers, which only `tox -e crosscheck`
    # installs (never the tensorflow env). Unless the mark expression asks for
    # crosscheck tests, the folder is deselected like the other tiers.
    markexpr = config.getoption("markexpr") or ""
    if collection_path.name == "crosscheck" and ("crosscheck" not in markexpr or "not crosscheck" in markexpr):
        return True
    return None


TINY_WORDS = (
    "the quick brown fox jumps over lazy dog a cat sat on mat who where what is was it "
    "good bad movie great terrible book written by jane in year paris london city big small red blue"
).split()


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from distilbert_hub import DistilBertTokenizer

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + TINY_WORDS + ["##s", "##ed", ".", ",", "?"]
    return DistilBertTokenizer(vocabulary, lowercase=True)


@pytest.fixture
def tiny_backbone(tiny_tokenizer):
    import keras

    from harness.testing import tiny_backbone_for

    keras.utils.set_random_seed(0)
    return tiny_backbone_for(tiny_tokenizer)
