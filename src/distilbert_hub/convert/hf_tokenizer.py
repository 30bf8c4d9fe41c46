"""Hugging Face tokenizer files <-> `DistilBertTokenizer` options.

A BERT-family checkpoint describes its tokenizer in up to three files:
`tokenizer.json` (the Rust tokenizer: vocabulary and normalizer),
`tokenizer_config.json` (`do_lower_case`, `strip_accents`, ...) and
`vocab.txt`. What they say about normalization is honoured, files that
disagree with each other are refused, and so is an explicit argument that
contradicts them: an uncased checkpoint never tokenizes as cased.
"""

import json
from pathlib import Path

from distilbert_hub.convert.hf_checkpoint import CheckpointError, read_json, write_json

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


def is_hf_tokenizer_json(spec):
    return isinstance(spec, dict) and "model" in spec and "normalizer" in spec


def read_tokenizer_json(path):
    """(tokens in id order, options its normalizer sets) from an HF `tokenizer.json`."""
    spec = read_json(path, "tokenizer.json")
    model = spec.get("model") or {}
    if model.get("type") != "WordPiece" or not isinstance(model.get("vocab"), dict):
        raise CheckpointError(
            f"{path}: a {model.get('type') or 'unknown'} tokenizer, not a WordPiece (BERT/DistilBERT) one."
        )
    vocab = model["vocab"]
    ids = sorted(vocab.values())
    if ids != list(range(len(ids))):
        raise CheckpointError(f"{path}: vocabulary ids are not 0..{len(ids) - 1} without gaps.")
    if model.get("continuing_subword_prefix", "##") != "##":
        raise CheckpointError(f"{path}: continuing_subword_prefix is {model['continuing_subword_prefix']!r}, not '##'.")
    normalizer = spec.get("normalizer") or {}
    if normalizer.get("type") != "BertNormalizer":
        raise CheckpointError(
            f"{path}: normalizer is {normalizer.get('type')!r}; a DistilBERT tokenizer uses 'BertNormalizer'."
        )
    pre_tokenizer = (spec.get("pre_tokenizer") or {}).get("type")
    if pre_tokenizer != "BertPreTokenizer":
        raise CheckpointError(f"{path}: pre_tokenizer is {pre_tokenizer!r}; expected 'BertPreTokenizer'.")
    options = {ours: normalizer[hf] for hf, ours in OPTION_NAMES.items() if hf in normalizer}
    return sorted(vocab, key=vocab.get), options


def read_tokenizer_config(path):
    config = read_json(path, "tokenizer_config.json")
    tokenizer_class = config.get("tokenizer_class")
    if tokenizer_class is not None and tokenizer_class not in BERT_TOKENIZER_CLASSES:
        raise CheckpointError(
            f"{path}: tokenizer_class is {tokenizer_class!r}; expected one of {BERT_TOKENIZER_CLASSES}."
        )
    options = {ours: config[hf] for hf, ours in CONFIG_OPTION_NAMES.items() if hf in config}
    if "split_special_tokens" in config:
        options["special_tokens_in_strings"] = not config["split_special_tokens"]
    return options


def merge_options(found, explicit, where):
    """`found` options (from files) updated by `explicit` arguments; an
    explicit value that contradicts a file raises."""
    merged = dict(found)
    for name, value in explicit.items():
        if value is None:
            continue
        if name in found and found[name] is not None and found[name] != value:
            raise ValueError(f"{name}={value!r} contradicts {where}, which says {name}={found[name]!r}.")
        merged[name] = value
    return merged


def read_hf_tokenizer(directory):
    """(vocabulary: a list of tokens or a vocab.txt path, options, description)
    from an HF checkpoint directory."""
    directory = Path(directory)
    options, sources, vocabulary = {}, [], None
    if (directory / TOKENIZER_JSON).is_file():
        vocabulary, options = read_tokenizer_json(directory / TOKENIZER_JSON)
        sources.append(str(directory / TOKENIZER_JSON))
    if (directory / TOKENIZER_CONFIG).is_file():
        config_options = read_tokenizer_config(directory / TOKENIZER_CONFIG)
        options = merge_options(options, config_options, " and ".join(sources) or "the defaults")
        sources.append(str(directory / TOKENIZER_CONFIG))
    if vocabulary is None:
        if not (directory / VOCAB_TXT).is_file():
            raise CheckpointError(f"{directory}: no tokenizer found (expected {TOKENIZER_JSON} or {VOCAB_TXT}).")
        vocabulary = directory / VOCAB_TXT
    # HF maps a literal "[MASK]" in the text to its id unless told otherwise.
    options.setdefault("special_tokens_in_strings", True)
    return vocabulary, options, " and ".join(sources) or str(directory / VOCAB_TXT)


def write_hf_tokenizer(tokenizer, directory, model_max_length):
    """`vocab.txt`, `tokenizer.json` and `tokenizer_config.json` that
    `transformers.AutoTokenizer` loads as this tokenizer."""
    directory = Path(directory)
    (directory / VOCAB_TXT).write_text("".join(f"{t}\n" for t in tokenizer.get_vocabulary()), encoding="utf-8")
    spec = json.loads(tokenizer.hf_engine().to_str())
    (directory / TOKENIZER_JSON).write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    write_json(
        directory / TOKENIZER_CONFIG,
        {
            "tokenizer_class": "DistilBertTokenizer",
            "do_lower_case": tokenizer.lowercase,
            "strip_accents": tokenizer.strip_accents,
            "tokenize_chinese_chars": tokenizer.tokenize_chinese_chars,
            "split_special_tokens": not tokenizer.special_tokens_in_strings,
            "model_max_length": int(model_max_length),
            "pad_token": tokenizer.pad_token,
            "unk_token": tokenizer.unk_token,
            "cls_token": tokenizer.cls_token,
            "sep_token": tokenizer.sep_token,
            "mask_token": tokenizer.mask_token,
        },
    )
