"""Tokenizer cases: `transformers.BertTokenizer` ids and offsets on the corpus.

The reference is the tokenizer `transformers` 5.x ships for DistilBERT (its
`DistilBertTokenizer` is `BertTokenizer`), built from the committed
vocabulary with each option set. Special tokens written literally in the text
are split like ordinary text (`split_special_tokens=True`) unless the case
sets `special_tokens_in_strings`, which is HF's default behaviour.
"""

import hashlib
import json

import numpy as np

from harness.golden import REPO_ROOT, Golden, GoldenOutput, pad_rows
from tools.golden_cases import register

VOCABULARY = "harness/fixtures/bert_base_uncased_vocab.txt"
CORPUS = "harness/fixtures/tokenizer_corpus.json"
EXACT = "token ids, masks and offsets are integers: exact equality"

OPTIONS = {
    "uncased": dict(lowercase=True),
    "cased": dict(lowercase=False),
    "uncased_keep_accents": dict(lowercase=True, strip_accents=False),
    "cased_strip_accents": dict(lowercase=False, strip_accents=True),
    "no_cjk_split": dict(lowercase=True, tokenize_chinese_chars=False),
    "special_tokens_in_strings": dict(lowercase=True, special_tokens_in_strings=True),
}


def corpus():
    return json.loads((REPO_ROOT / CORPUS).read_text(encoding="utf-8"))["texts"]


def tokenizer_config(options):
    return {
        "vocabulary": VOCABULARY,
        "vocabulary_sha256": hashlib.sha256((REPO_ROOT / VOCABULARY).read_bytes()).hexdigest(),
        "lowercase": options["lowercase"],
        "strip_accents": options.get("strip_accents"),
        "tokenize_chinese_chars": options.get("tokenize_chinese_chars", True),
        "special_tokens_in_strings": options.get("special_tokens_in_strings", False),
    }


def reference_tokenizer(config):
    from transformers import BertTokenizer
    from transformers.models.bert.tokenization_bert import load_vocab

    return BertTokenizer(
        vocab=load_vocab(str(REPO_ROOT / config["vocabulary"])),
        do_lower_case=config["lowercase"],
        strip_accents=config["strip_accents"],
        tokenize_chinese_chars=config["tokenize_chinese_chars"],
    )


def build_tokenizer_case(case, options_name):
    config = tokenizer_config(OPTIONS[options_name])
    texts = [item["text"] for item in corpus()]
    encoded = reference_tokenizer(config)(
        texts,
        add_special_tokens=False,
        return_offsets_mapping=True,
        split_special_tokens=not config["special_tokens_in_strings"],
    )
    ids = encoded["input_ids"]
    offsets = [np.asarray(o, dtype=np.int32).reshape(-1, 2) for o in encoded["offset_mapping"]]
    token_mask = pad_rows([[1] * len(r) for r in ids], 0)
    outputs = {
        "token_ids": pad_rows(ids, -1),
        "token_mask": token_mask,
        "offsets": pad_rows(offsets, -1, tail=(2,)),
    }
    return Golden(
        case_id=case.case_id,
        kind=case.kind,
        provenance={},
        config=config,
        inputs={"texts": texts},
        outputs={
            name: GoldenOutput(
                value,
                atol=0.0,
                rtol=0.0,
                tolerance_reason=EXACT,
                real_token_mask=None if name == "token_mask" else "token_mask",
            )
            for name, value in outputs.items()
        },
    )


for _name in OPTIONS:
    register(f"tokenizer_{_name}", "tokenizer", lambda case, n=_name: build_tokenizer_case(case, n))
