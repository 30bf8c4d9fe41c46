#!/usr/bin/env python
"""Tokenizer throughput: DistilBertTokenizer vs transformers' fast tokenizer.

    python tools/benchmark_tokenizer.py [--texts 4000] [--sequence-length 128] [--repeats 7]

Both tokenize the same few thousand texts to padded, truncated int ids of one
length, without special tokens, in the same process, alternating runs; the
median of each is reported and the ratio is ours/theirs texts per second
(> 1 means we are faster). Outputs are checked equal first. Needs
transformers (tox -e crosscheck has it): a script, not a timed test.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "src"))

import numpy as np  # noqa: E402

VOCABULARY = REPO_ROOT / "harness/fixtures/bert_base_uncased_vocab.txt"


def make_texts(count, seed=0):
    """Sentences of 10-200 vocabulary words with capitals, accents and punctuation."""
    words = [w for w in VOCABULARY.read_text(encoding="utf-8").splitlines() if w.isalpha() and not w.startswith("[")]
    rng = np.random.default_rng(seed)
    extras = ["Café", "naïve", "東京", "😀", "don't", "U.S.A.", "3.14", "—", "Zürich"]
    texts = []
    for _ in range(count):
        n = int(rng.integers(10, 200))
        picked = [words[i] for i in rng.integers(0, len(words), size=n)]
        for j in rng.integers(0, n, size=max(1, n // 15)):
            picked[j] = extras[int(rng.integers(0, len(extras)))]
        text = " ".join(picked)
        texts.append(text[0].upper() + text[1:] + ".")
    return texts


def best_of(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=4000)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    from transformers import BertTokenizer
    from transformers.models.bert.tokenization_bert import load_vocab

    from distilbert_hub import DistilBertTokenizer

    texts = make_texts(args.texts)
    length = args.sequence_length
    ours = DistilBertTokenizer(VOCABULARY, lowercase=True)
    theirs = BertTokenizer(vocab=load_vocab(str(VOCABULARY)), do_lower_case=True)

    def run_ours():
        return ours(texts, sequence_length=length)

    def run_theirs():
        return theirs(
            texts,
            add_special_tokens=False,
            padding="max_length",
            truncation=True,
            max_length=length,
            return_attention_mask=False,
            return_token_type_ids=False,
            return_tensors="np",
        )["input_ids"]

    np.testing.assert_array_equal(run_ours(), run_theirs())
    ours_times, theirs_times = [], []
    for _ in range(args.repeats):  # alternate, so drift in machine load hits both
        ours_times.append(best_of(run_ours, 1))
        theirs_times.append(best_of(run_theirs, 1))
    ours_s, theirs_s = statistics.median(ours_times), statistics.median(theirs_times)
    print(f"{len(texts)} texts -> [{len(texts)}, {length}] int32 ids, median of {args.repeats} runs each")
    print(f"  distilbert_hub.DistilBertTokenizer  {len(texts) / ours_s:10.0f} texts/s")
    print(f"  transformers BertTokenizer (fast)   {len(texts) / theirs_s:10.0f} texts/s")
    print(f"  throughput ratio ours/theirs: {theirs_s / ours_s:.2f}x")


if __name__ == "__main__":
    main()
