"""Hugging Face tokenizer files <-> `DistilBertTokenizer` options.

A BERT-family checkpoint describes its tokenizer in `tokenizer.json` (vocabulary and normalizer),
`tokenizer_config.json` (`do_lower_case`, `strip_accents`, ...) and `vocab.txt`. Their normalization is
honoured; files that disagree, or an explicit argument contradicting them, are refused: an uncased
checkpoint never tokenizes as cased.
"""

import json
from pathlib import Path

from distilbert_hub.convert.hf_checkpoint import (
    CheckpointError,
    checkpoint_file,
    is_checkpoint_file,
    read_json,
    write_json,
)

TOKENIZER_JSON = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
VOCAB_TXT = "vocab.txt"
BERT_TOKENIZER_CLASSES = ("DistilBertTokenizer", "DistilBertTokenizerFast", "BertTokenizer", "BertTokenizerFast")
# HF option name -> DistilBertTokenizer argument
OPTION_NAMES = {
    "lowercase": "lowercase",
    "strip_accents": "strip_accents",
    "handle_chinese_chars": "tokenize_chinese_chars",
}
CONFIG_OPTION_NAMES = {
    "do_lower_case": "lowercase",
    "strip_accents": "strip_accents",
    "tokenize_chinese_chars": "tokenize_chinese_chars",
}
# tokenizer_config.json's special tokens, each with the one this tokenizer uses.
SPECIAL_TOKENS = {
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "mask_token": "[MASK]",
}


def _object(value, path, key):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: '{key}' is {type(value).__name__}, expected an object.")
    return value


def check_options(options, path):
    """Tokenizer options must be true/false (or null for strip_accents): a string "false" is not silently true."""
    for name, value in options.items():
        if value is not None and not isinstance(value, bool):
            raise CheckpointError(
                f"{path}: '{name}' is {value!r:.60} ({type(value).__name__}), expected true or false."
            )
    return options


def read_tokenizer_json(path):
    """(tokens in id order, options its normalizer sets) from an HF `tokenizer.json`."""
    spec = read_json(path, "tokenizer.json")
    model = _object(spec.get("model"), path, "model")
    if model.get("type") != "WordPiece" or not isinstance(model.get("vocab"), dict):
        raise CheckpointError(
            f"{path}: a {str(model.get('type') or 'unknown'):.40} tokenizer, not a WordPiece (BERT/DistilBERT) one."
        )
    vocab = model["vocab"]
    if not vocab or any(isinstance(i, bool) or not isinstance(i, int) for i in vocab.values()):
        raise CheckpointError(f"{path}: model.vocab must map tokens to integer ids.")
    ids = sorted(vocab.values())
    if ids != list(range(len(ids))):
        raise CheckpointError(f"{path}: vocabulary ids are not 0..{len(ids) - 1} without gaps.")
    if model.get("continuing_subword_prefix", "##") != "##":
        raise CheckpointError(
            f"{path}: continuing_subword_prefix is {model['continuing_subword_prefix']!r:.40}, not '##'."
        )
    if model.get("unk_token", "[UNK]") != "[UNK]":
        raise CheckpointError(f"{path}: unk_token is {model['unk_token']!r:.40}; this tokenizer uses '[UNK]'.")
    if model.get("max_input_chars_per_word", 100) != 100:
        raise CheckpointError(
            f"{path}: max_input_chars_per_word is {model['max_input_chars_per_word']!r:.40}; this tokenizer uses 100."
        )
    normalizer = _object(spec.get("normalizer"), path, "normalizer")
    if normalizer.get("type") != "BertNormalizer":
        raise CheckpointError(
            f"{path}: normalizer is {normalizer.get('type')!r:.40}; a DistilBERT tokenizer uses 'BertNormalizer'."
        )
    if normalizer.get("clean_text", True) is not True:
        raise CheckpointError(
            f"{path}: normalizer.clean_text is {normalizer['clean_text']!r:.40}; only true is supported."
        )
    pre_tokenizer = _object(spec.get("pre_tokenizer"), path, "pre_tokenizer").get("type")
    if pre_tokenizer != "BertPreTokenizer":
        raise CheckpointError(f"{path}: pre_tokenizer is {pre_tokenizer!r:.40}; expected 'BertPreTokenizer'.")
    options = check_options({ours: normalizer[hf] for hf, ours in OPTION_NAMES.items() if hf in normalizer}, path)
    check_added_tokens(spec.get("added_tokens"), vocab, path)
    return sorted(vocab, key=vocab.get), options


STANDARD_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def check_added_tokens(added, vocab, path):
    """`added_tokens` are honoured as this tokenizer handles them: the five special tokens, each at its
    vocabulary id, matched whole and unnormalized. Any other added token (one transformers would match in
    the text before WordPiece) is refused, rather than silently tokenized as ordinary text."""
    if added is None:
        return
    if not isinstance(added, list):
        raise CheckpointError(f"{path}: 'added_tokens' is {type(added).__name__}, expected a list.")
    for i, token in enumerate(added):
        if not isinstance(token, dict) or not isinstance(token.get("content"), str):
            raise CheckpointError(f"{path}: added_tokens[{i}] is not an object with a string 'content'.")
        content = token["content"]
        if content not in STANDARD_SPECIAL_TOKENS:
            raise CheckpointError(
                f"{path}: added_tokens[{i}] is {content!r:.60}, an added token beyond the five special ones "
                f"{list(STANDARD_SPECIAL_TOKENS)}; this tokenizer cannot match it as transformers would."
            )
        if token.get("id") != vocab.get(content):
            raise CheckpointError(
                f"{path}: added_tokens[{i}] {content!r} has id {token.get('id')!r:.20}, but the vocabulary gives "
                f"it {vocab.get(content)}."
            )
        flags = {k: token.get(k, d) for k, d in (("single_word", False), ("lstrip", False), ("rstrip", False))}
        if any(flags.values()) or token.get("normalized", False) is not False:
            raise CheckpointError(
                f"{path}: added_tokens[{i}] {content!r} sets {flags | {'normalized': token.get('normalized')}}; "
                "this tokenizer matches special tokens whole and unnormalized only."
            )


def read_tokenizer_config(path):
    config = read_json(path, "tokenizer_config.json")
    tokenizer_class = config.get("tokenizer_class")
    if tokenizer_class is not None and tokenizer_class not in BERT_TOKENIZER_CLASSES:
        raise CheckpointError(
            f"{path}: tokenizer_class is {tokenizer_class!r:.60}; expected one of {BERT_TOKENIZER_CLASSES}."
        )
    check_options({hf: config[hf] for hf in (*CONFIG_OPTION_NAMES, "split_special_tokens") if hf in config}, path)
    options = {ours: config[hf] for hf, ours in CONFIG_OPTION_NAMES.items() if hf in config}
    if config.get("split_special_tokens") is not None:
        options["special_tokens_in_strings"] = not config["split_special_tokens"]
    for key, default in SPECIAL_TOKENS.items():
        value = config.get(key, default)
        value = value.get("content") if isinstance(value, dict) else value
        if value is not None and value != default:
            raise CheckpointError(f"{path}: {key} is {value!r:.60}; this tokenizer uses {default!r}.")
    return options


def merge_options(found, explicit, where):
    """`found` options (from files) updated by `explicit` arguments; one contradicting a file raises."""
    merged = dict(found)
    for name, value in explicit.items():
        if value is None:
            continue
        if name in found and found[name] is not None and found[name] != value:
            raise ValueError(f"{name}={value!r} contradicts {where}, which says {name}={found[name]!r}.")
        merged[name] = value
    return merged


def read_hf_tokenizer(directory):
    """(vocabulary: a list of tokens or a vocab.txt path, options, description) from an HF checkpoint."""
    directory = Path(directory)
    options, sources, vocabulary = {}, [], None
    if is_checkpoint_file(directory, TOKENIZER_JSON):
        vocabulary, options = read_tokenizer_json(checkpoint_file(directory, TOKENIZER_JSON, "tokenizer.json"))
        sources.append(str(directory / TOKENIZER_JSON))
    if is_checkpoint_file(directory, TOKENIZER_CONFIG):
        config_options = read_tokenizer_config(checkpoint_file(directory, TOKENIZER_CONFIG, "tokenizer config"))
        options = merge_options(options, config_options, " and ".join(sources) or "the defaults")
        sources.append(str(directory / TOKENIZER_CONFIG))
    if vocabulary is None:
        if not is_checkpoint_file(directory, VOCAB_TXT):
            raise CheckpointError(f"{directory}: no tokenizer found (expected {TOKENIZER_JSON} or {VOCAB_TXT}).")
        vocabulary = checkpoint_file(directory, VOCAB_TXT, "vocabulary")
    # HF maps a literal "[MASK]" in the text to its id unless told otherwise.
    options.setdefault("special_tokens_in_strings", True)
    return vocabulary, options, " and ".join(sources) or str(directory / VOCAB_TXT)


def write_hf_tokenizer(tokenizer, directory, model_max_length):
    """`vocab.txt`, `tokenizer.json` and `tokenizer_config.json` that `AutoTokenizer` loads as this tokenizer."""
    directory = Path(directory)
    (directory / VOCAB_TXT).write_text("".join(f"{t}\n" for t in tokenizer.get_vocabulary()), encoding="utf-8")
    spec = json.loads(tokenizer.hf_engine().to_str())
    (directory / TOKENIZER_JSON).write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    write_json(
        directory / TOKENIZER_CONFIG,
        {
            "tokenizer_class": "DistilBertTokenizer",
            "split_special_tokens": not tokenizer.special_tokens_in_strings,
            "model_max_length": int(model_max_length),
        }
        | {hf: getattr(tokenizer, ours) for hf, ours in CONFIG_OPTION_NAMES.items()}
        | {key: getattr(tokenizer, key) for key in SPECIAL_TOKENS},
    )
