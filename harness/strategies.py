"""All Hypothesis strategies of the suite, in one module.

Each strategy is composable; tests import from here instead of
building their own, so what "any text" or "any tiny config" means is decided
once.
"""

import numpy as np
from hypothesis import strategies as st

# Code points where BERT tokenization is interesting: ASCII, Latin with
# accents, combining marks, CJK, Hangul, Thai, Arabic, Devanagari, emoji and
# modifiers, control and format characters, unusual spaces, specials.
INTERESTING_RANGES = [
    (0x00, 0x7F),
    (0x80, 0x24F),
    (0x300, 0x36F),
    (0x370, 0x4FF),
    (0x590, 0x6FF),
    (0x900, 0x97F),
    (0xE00, 0xE7F),
    (0x2000, 0x206F),
    (0x2100, 0x218F),
    (0x3000, 0x303F),
    (0x3040, 0x30FF),
    (0x4E00, 0x4E80),
    (0xAC00, 0xAC40),
    (0xFB00, 0xFB06),
    (0xFE00, 0xFE0F),
    (0xFF00, 0xFFEF),
    (0xFFFD, 0xFFFD),
    (0x1F300, 0x1F64F),
    (0x1F3FB, 0x1F3FF),
    (0x1F1E6, 0x1F1FF),
    (0x200D, 0x200D),
]


def _characters():
    ranges = [st.integers(lo, hi) for lo, hi in INTERESTING_RANGES]
    return st.one_of(*ranges).map(chr).filter(lambda c: not 0xD800 <= ord(c) <= 0xDFFF)


def texts(max_size=60):
    """Arbitrary text biased towards the characters BERT treats specially,
    mixed with whole words and literal special tokens."""
    pieces = st.one_of(
        st.text(_characters(), min_size=1, max_size=8),
        st.sampled_from(["the", "Café", "naïve", "[MASK]", "[CLS]", "don't", "  ", "\n", "ß", "İ", "ﬁ"]),
        st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=4),
    )
    return st.lists(pieces, max_size=max_size // 4).map("".join)


def tokenizer_options():
    return st.fixed_dictionaries(
        {
            "lowercase": st.booleans(),
            "strip_accents": st.sampled_from([None, True, False]),
            "tokenize_chinese_chars": st.booleans(),
            "special_tokens_in_strings": st.booleans(),
        }
    )


@st.composite
def tiny_hf_configs(draw):
    """A tiny Hugging Face DistilBERT config (as a dict)."""
    num_heads = draw(st.integers(1, 4))
    head_dim = draw(st.sampled_from([2, 4, 8]))
    return {
        "vocab_size": draw(st.integers(8, 64)),
        "dim": num_heads * head_dim,
        "n_heads": num_heads,
        "n_layers": draw(st.integers(1, 3)),
        "hidden_dim": draw(st.integers(4, 48)),
        "max_position_embeddings": draw(st.integers(4, 24)),
        "activation": draw(st.sampled_from(["gelu", "relu"])),
        "sinusoidal_pos_embds": draw(st.booleans()),
    }


@st.composite
def token_batches(draw, vocabulary_size, max_sequence_length, max_batch=3):
    """`{"token_ids", "padding_mask"}` with right padding and >= 1 real token a row."""
    batch = draw(st.integers(1, max_batch))
    length = draw(st.integers(1, max_sequence_length))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, length + 1, size=batch)
    token_ids = rng.integers(1, vocabulary_size, size=(batch, length)).astype("int32")
    padding_mask = (np.arange(length)[None, :] < lengths[:, None]).astype("int32")
    token_ids = np.where(padding_mask == 1, token_ids, 0).astype("int32")
    return {"token_ids": token_ids, "padding_mask": padding_mask}


def seeds():
    return st.integers(0, 2**32 - 1)


# Words of the real uncased vocabulary and ones it splits into pieces.
PAIR_WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "mat",
    "Zürich",
    "naïve",
    "tokenization",
    "unbelievably",
    "東京",
    ",",
    ".",
    "don't",
    "1813",
    "Austen",
    "café",
    "a",
    "b",
    "ok",
]


def sentences(max_words=20):
    """A sentence of 0..max_words words from PAIR_WORDS."""
    return st.lists(st.sampled_from(PAIR_WORDS), max_size=max_words).map(" ".join)


def word_lists(max_words=10):
    """Pre-split words, as token classification takes them."""
    return st.lists(st.sampled_from(PAIR_WORDS), min_size=1, max_size=max_words)


def masked_texts(max_size=40):
    """`texts` with one to three literal "[MASK]" tokens inserted (fill-mask inputs)."""
    return st.tuples(st.lists(texts(max_size // 2), min_size=2, max_size=4)).map(
        lambda parts: " [MASK] ".join(parts[0])
    )
