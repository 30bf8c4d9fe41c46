import json

import numpy as np
import pytest

from distilbert_hub import DistilBertTokenizer
from harness.golden import REPO_ROOT

VOCABULARY = REPO_ROOT / "harness/fixtures/bert_base_uncased_vocab.txt"
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@pytest.fixture(scope="module")
def tokenizer():
    return DistilBertTokenizer(VOCABULARY, lowercase=True)


def test_single_string_gives_1d_int32_ids_without_special_tokens(tokenizer):
    ids = tokenizer("The quick brown fox.")
    assert ids.dtype == np.int32 and ids.ndim == 1
    assert [tokenizer.id_to_token(i) for i in ids] == ["the", "quick", "brown", "fox", "."]
    assert tokenizer.cls_token_id not in ids and tokenizer.sep_token_id not in ids


def test_list_gives_list_and_sequence_length_gives_dense(tokenizer):
    ragged = tokenizer(["a b c", "d"])
    assert [r.tolist() for r in ragged] == [tokenizer("a b c").tolist(), tokenizer("d").tolist()]
    dense = tokenizer(["a b c", "d"], sequence_length=2)
    assert dense.dtype == np.int32 and dense.shape == (2, 2)
    assert dense.tolist() == [ragged[0][:2].tolist(), [ragged[1][0], tokenizer.pad_token_id]]
    assert tokenizer("a", sequence_length=3).shape == (3,)


def test_vocabulary_accessors_and_special_tokens(tokenizer):
    assert tokenizer.vocabulary_size() == 30522 == len(tokenizer.get_vocabulary())
    assert (
        tokenizer.pad_token_id,
        tokenizer.unk_token_id,
        tokenizer.cls_token_id,
        tokenizer.sep_token_id,
        tokenizer.mask_token_id,
    ) == (0, 100, 101, 102, 103)
    assert tokenizer.token_to_id("[MASK]") == 103 and tokenizer.id_to_token(103) == "[MASK]"
    with pytest.raises(ValueError, match="id 30522 is outside"):
        tokenizer.id_to_token(30522)
    with pytest.raises(ValueError, match="'zzzqqq' is not in the vocabulary"):
        tokenizer.token_to_id("zzzqqq")


def test_detokenize_round_trips_and_handles_batches(tokenizer):
    # Like transformers 5.x decode (no clean_up_tokenization_spaces): word
    # pieces are joined, punctuation stays split off.
    assert tokenizer.detokenize(tokenizer("Hello, tokenization!")) == "hello, tokenization!"
    text = "hello world, it's a test."
    assert tokenizer.detokenize(tokenizer([text, "ok"], sequence_length=9))[1].startswith("ok [PAD]")
    with pytest.raises(ValueError, match="id -3 is outside"):
        tokenizer.detokenize([1, -3])


def test_special_tokens_in_strings():
    plain = DistilBertTokenizer(VOCABULARY, lowercase=True)
    literal = DistilBertTokenizer(VOCABULARY, lowercase=True, special_tokens_in_strings=True)
    assert literal("a [MASK] b").tolist() == [plain("a")[0], 103, plain("b")[0]]
    assert 103 not in plain("a [MASK] b").tolist()


def test_offsets_point_into_the_original_string(tokenizer):
    text = "Héllo 😀 WÖRLD"
    ids, offsets = tokenizer.tokenize_with_offsets(text)
    assert offsets.shape == (len(ids), 2)
    assert [text[s:e] for s, e in offsets] == ["Héllo", "😀", "WÖRLD"]


def test_strip_accents_follows_lowercase_like_transformers():
    cased = DistilBertTokenizer(VOCABULARY)
    assert cased.strip_accents is None and not cased.lowercase
    assert cased("é").tolist() != DistilBertTokenizer(VOCABULARY, lowercase=True)("é").tolist()


def test_vocabulary_sources_agree(tmp_path, tokenizer):
    tokens = VOCABULARY.read_text(encoding="utf-8").splitlines()
    tokenizer_json = tmp_path / "tokenizer.json"
    tokenizer_json.write_text(json.dumps(hf_tokenizer_json(tokens, lowercase=True)))
    text = "Tokenizers agree on every source."
    for source in (tokens, str(VOCABULARY), tokenizer_json):
        assert DistilBertTokenizer(source, lowercase=True)(text).tolist() == tokenizer(text).tolist()


def hf_tokenizer_json(tokens, lowercase, strip_accents=None):
    """The parts of an HF BERT `tokenizer.json` that describe tokenization."""
    return {
        "normalizer": {
            "type": "BertNormalizer",
            "clean_text": True,
            "handle_chinese_chars": True,
            "strip_accents": strip_accents,
            "lowercase": lowercase,
        },
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "model": {
            "type": "WordPiece",
            "unk_token": "[UNK]",
            "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100,
            "vocab": {t: i for i, t in enumerate(tokens)},
        },
    }


@pytest.mark.parametrize("lowercase", [True, False])
def test_a_tokenizer_json_alone_sets_the_normalization(tmp_path, lowercase):
    # With transformers 5.24: "Hello World, Café" -> [7592, 2088, 1010, 7668] uncased.
    tokens = VOCABULARY.read_text(encoding="utf-8").splitlines()
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(hf_tokenizer_json(tokens, lowercase=lowercase)))
    ids = DistilBertTokenizer(path)("Hello World, Café").tolist()
    assert ids == ([7592, 2088, 1010, 7668] if lowercase else [100, 100, 1010, 100])
    with pytest.raises(ValueError, match=f"lowercase={not lowercase} contradicts .*tokenizer.json"):
        DistilBertTokenizer(path, lowercase=not lowercase)


def test_a_tokenizer_json_of_another_model_is_refused(tmp_path):
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps({"normalizer": None, "model": {"type": "BPE", "vocab": {"a": 0}}}))
    with pytest.raises(ValueError, match="a BPE tokenizer, not a WordPiece"):
        DistilBertTokenizer(path)


def test_config_round_trip(tokenizer):
    restored = DistilBertTokenizer.from_config(tokenizer.get_config())
    assert restored.get_config() == tokenizer.get_config()


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (None, TypeError, "got None"),
        (["ok", 3], TypeError, "input item 1 is int 3"),
        (["ok", None], TypeError, "input item 1 is NoneType"),
        (b"caf\xc3", ValueError, "not valid UTF-8"),
        ([b"ok", b"\xff"], ValueError, "input item 1 is bytes that are not valid UTF-8"),
        (3.5, TypeError, "got float"),
    ],
)
def test_bad_inputs_raise_clear_errors(tokenizer, bad, error, message):
    with pytest.raises(error, match=message):
        tokenizer(bad)


def test_bytes_in_utf8_are_accepted(tokenizer):
    assert tokenizer("café".encode()).tolist() == tokenizer("café").tolist()


@pytest.mark.parametrize(
    "vocabulary, message",
    [
        (["[PAD]", "[UNK]", "[CLS]", "[SEP]"], r"lacks required special token\(s\) \['\[MASK\]'\]"),
        (SPECIALS + ["a", "b", "a"], "duplicate token 'a' at entries 6 and 8"),
        (SPECIALS + [7], "vocabulary item 5 is int"),
        ([], "the vocabulary is empty"),
        (None, "needs a vocabulary"),
    ],
)
def test_bad_vocabularies_are_named(vocabulary, message):
    with pytest.raises((ValueError, TypeError), match=message):
        DistilBertTokenizer(vocabulary)


def test_vocab_file_errors_name_the_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(SPECIALS + ["x", "x"]) + "\n")
    with pytest.raises(ValueError, match=f"{path}: duplicate token 'x'"):
        DistilBertTokenizer(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        DistilBertTokenizer(tmp_path / "missing.txt")


def test_a_megabyte_string_tokenizes(tokenizer):
    text = ("lorem ipsum dolor sit amet, " * 40000)[: 1 << 20]
    ids = tokenizer(text)
    assert len(ids) > 150000 and tokenizer(text, sequence_length=128).shape == (128,)
