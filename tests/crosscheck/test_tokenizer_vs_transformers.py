"""Differential test: our tokenizer against live transformers on arbitrary text."""

import functools

from hypothesis import given
from transformers import BertTokenizer
from transformers.models.bert.tokenization_bert import load_vocab

from distilbert_hub import DistilBertTokenizer
from harness import strategies
from harness.golden import REPO_ROOT

VOCABULARY = REPO_ROOT / "harness/fixtures/bert_base_uncased_vocab.txt"


@functools.cache
def pair(lowercase, strip_accents, tokenize_chinese_chars, special_tokens_in_strings):
    ours = DistilBertTokenizer(
        VOCABULARY,
        lowercase=lowercase,
        strip_accents=strip_accents,
        tokenize_chinese_chars=tokenize_chinese_chars,
        special_tokens_in_strings=special_tokens_in_strings,
    )
    theirs = BertTokenizer(
        vocab=load_vocab(str(VOCABULARY)),
        do_lower_case=lowercase,
        strip_accents=strip_accents,
        tokenize_chinese_chars=tokenize_chinese_chars,
    )
    return ours, theirs


@given(text=strategies.texts(), options=strategies.tokenizer_options())
def test_ids_offsets_and_decoding_match_transformers(text, options):
    ours, theirs = pair(**options)
    expected = theirs(
        text,
        add_special_tokens=False,
        return_offsets_mapping=True,
        split_special_tokens=not options["special_tokens_in_strings"],
    )
    ids, offsets = ours.tokenize_with_offsets(text)
    assert ids.tolist() == expected["input_ids"], f"ids differ for {text!r} with {options}"
    assert [tuple(o) for o in offsets.tolist()] == [tuple(o) for o in expected["offset_mapping"]]
    assert ours.detokenize(ids) == theirs.decode(expected["input_ids"])
