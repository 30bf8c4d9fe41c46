"""Every way a checkpoint can carry its tokenizer, against live
`transformers.AutoTokenizer`: `vocab.txt` alone (transformers lowercases by
default), with `tokenizer_config.json` saying either case, with
`tokenizer.json`, with special tokens in the text or split, and vocabulary
lines transformers reads in its own way (a lone CR inside a token, CRLF
endings, trailing spaces). Ours must give the same ids, or refuse."""

import json

import pytest
import transformers

import distilbert_hub as hub
from distilbert_hub.convert.hf_checkpoint import CheckpointError

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["hello", "world", "Hello", "World", "cafe", "café", "東", "京", "##s", ",", ".", "a\rb", "x"]
TEXTS = ["Hello World, Café", "hello worlds. 東京", "[MASK] hello [SEP] world", "a\rb x", "HELLO café, cafe"]
CONFIG = {"model_type": "distilbert", "vocab_size": 18, "dim": 8, "n_layers": 1, "n_heads": 2, "hidden_dim": 16}


def write_vocab(directory, tokens, line_end="\n"):
    directory.mkdir(exist_ok=True)
    (directory / "vocab.txt").write_bytes("".join(f"{t}{line_end}" for t in tokens).encode())
    (directory / "config.json").write_text(json.dumps(CONFIG))


def carriers():
    def vocab_only(d):
        write_vocab(d, SPECIALS + WORDS)

    def crlf(d):
        write_vocab(d, SPECIALS + [w for w in WORDS if "\r" not in w], "\r\n")

    def trailing_spaces(d):
        write_vocab(d, SPECIALS + [f"{w} " if w == "world" else w for w in WORDS])

    def config(lowercase, **extra):
        def make(d):
            write_vocab(d, SPECIALS + WORDS)
            (d / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": lowercase, **extra}))

        return make

    def fast_json(lowercase, **extra):
        def make(d):
            write_vocab(d, SPECIALS + [w for w in WORDS if "\r" not in w])
            transformers.BertTokenizerFast(str(d / "vocab.txt"), do_lower_case=lowercase, **extra).save_pretrained(d)

        return make

    return {
        "vocab.txt only": vocab_only,
        "vocab.txt with CRLF": crlf,
        "vocab.txt with a trailing space": trailing_spaces,
        "tokenizer_config lowercase": config(True),
        "tokenizer_config cased": config(False),
        "tokenizer_config cased, accents stripped": config(False, strip_accents=True),
        "tokenizer_config split special tokens": config(True, split_special_tokens=True),
        "tokenizer.json uncased": fast_json(True),
        "tokenizer.json cased": fast_json(False),
        "tokenizer.json no CJK spacing": fast_json(True, tokenize_chinese_chars=False),
    }


CARRIERS = carriers()


@pytest.mark.parametrize("carrier", sorted(CARRIERS))
def test_a_tokenizer_gives_transformers_ids_however_the_checkpoint_carries_it(tmp_path, carrier):
    directory = tmp_path / "checkpoint"
    CARRIERS[carrier](directory)
    reference = transformers.AutoTokenizer.from_pretrained(directory)
    try:
        ours = hub.DistilBertTokenizer.from_preset(str(directory))
    except CheckpointError as error:  # a refusal must name the file; transformers' reading must then be odd
        pytest.fail(f"{carrier}: refused a tokenizer transformers reads: {error}")
    reference_vocab = sorted(reference.get_vocab(), key=reference.get_vocab().get)
    assert ours.get_vocabulary() == reference_vocab, carrier
    for text in TEXTS:
        expected = reference(text, add_special_tokens=False)["input_ids"]
        assert ours(text).tolist() == expected, f"{carrier}: {text!r}"


def test_an_added_token_transformers_would_match_is_refused_not_ignored(tmp_path):
    directory = tmp_path / "checkpoint"
    write_vocab(directory, SPECIALS + [w for w in WORDS if "\r" not in w])
    reference = transformers.BertTokenizerFast(str(directory / "vocab.txt"))
    reference.add_tokens(["helloworld"])
    reference.save_pretrained(directory)
    assert transformers.AutoTokenizer.from_pretrained(directory)("helloworld", add_special_tokens=False)[
        "input_ids"
    ] == [len(SPECIALS) + len(WORDS) - 1]
    with pytest.raises(CheckpointError, match="an added token beyond the five special ones"):
        hub.DistilBertTokenizer.from_preset(str(directory))
