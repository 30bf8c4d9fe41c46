import os

import keras
import numpy as np
import tokenizers
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from distilbert_hub import preset_utils
from distilbert_hub.convert.hf_checkpoint import CheckpointError
from distilbert_hub.convert.hf_tokenizer import merge_options, read_tokenizer_json

SPECIAL_TOKENS = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}
# transformers' WordPiece turns a word longer than this (in characters) into [UNK].
MAX_INPUT_CHARS_PER_WORD = 100
# A vocab.txt larger than this is refused unread (BERT's is 230 KB, the multilingual one 870 KB).
MAX_VOCABULARY_BYTES = 64 * 1024 * 1024
# What Rust's `str::trim_end` strips (Unicode White_Space), as `tokenizers` reads a vocab.txt line.
_RUST_WHITESPACE = (
    " \t\n\x0b\x0c\r\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


def read_vocabulary_lines(path):
    """The tokens of a vocab.txt as transformers reads it: lines split on
    "\\n" only (a lone "\\r" stays inside its token), trailing whitespace
    (and so a CRLF's "\\r") stripped; at most MAX_VOCABULARY_BYTES."""
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
        if size > MAX_VOCABULARY_BYTES:
            raise CheckpointError(
                f"{path}: a vocabulary of {size} bytes, more than {MAX_VOCABULARY_BYTES}; refused unread."
            )
        with open(path, "rb") as f:
            data = f.read(MAX_VOCABULARY_BYTES + 1)
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read the vocabulary ({error.strerror or error}).") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CheckpointError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}).") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip(_RUST_WHITESPACE) for line in lines]


def survives_vocabulary_file(token):
    """Whether `token` reads back unchanged as a line of a vocab.txt."""
    return "\n" not in token and token == token.rstrip(_RUST_WHITESPACE)


def _read_vocabulary(vocabulary):
    """(tokens, options the source sets, source description) from a list, a
    `vocab.txt` path or an HF `tokenizer.json` path (whose normalizer sets
    lowercase, strip_accents and tokenize_chinese_chars)."""
    if isinstance(vocabulary, (str, os.PathLike)):
        path = os.fspath(vocabulary)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"vocabulary file {path!r} does not exist.")
        if path.endswith(".json"):
            tokens, options = read_tokenizer_json(path)
            return tokens, options, path
        return read_vocabulary_lines(path), {}, path
    if isinstance(vocabulary, dict):
        for token, id in vocabulary.items():
            if not isinstance(token, str) or isinstance(id, bool) or not isinstance(id, (int, np.integer)):
                raise TypeError(f"vocabulary dict entry {token!r:.60}: {id!r:.60} must map a str to an int id.")
        ids = sorted(int(id) for id in vocabulary.values())
        if ids != list(range(len(ids))):
            gap = next(i for i, id in enumerate(ids) if id != i)
            raise ValueError(
                f"vocabulary dict: ids must be 0..{len(ids) - 1} without gaps or repeats; id {gap} is "
                f"{'missing' if gap not in ids else 'repeated'} (a gapped dict would be renumbered silently)."
            )
        return sorted(vocabulary, key=vocabulary.get), {}, "vocabulary dict"
    if isinstance(vocabulary, (list, tuple)):
        for i, token in enumerate(vocabulary):
            if not isinstance(token, str):
                raise TypeError(f"vocabulary item {i} is {type(token).__name__} {token!r}, expected str.")
        return list(vocabulary), {}, "vocabulary list"
    raise TypeError(
        "vocabulary must be a list of tokens, a vocab.txt path or a tokenizer.json path; "
        f"got {type(vocabulary).__name__}."
    )


def _in_safe_mode():
    """Whether Keras is deserializing with safe_mode=True (the default of load_model).

    Private Keras API: `keras.config` can enable unsafe deserialization but
    not read the mode; guarded by tests/test_keras_private_api.py."""
    try:
        from keras.src.saving.serialization_lib import in_safe_mode
    except ImportError:  # a Keras without it: refuse file vocabularies, the safe choice
        return True
    return bool(in_safe_mode())


def _check_vocabulary(tokens, source):
    if not tokens:
        raise ValueError(f"{source}: the vocabulary is empty.")
    first_line = {}
    for line, token in enumerate(tokens, start=1):
        if token in first_line:
            raise ValueError(f"{source}: duplicate token {token!r} at entries {first_line[token]} and {line}.")
        if token == "":
            raise ValueError(f"{source}: empty token at entry {line}.")
        first_line[token] = line
    missing = [t for t in SPECIAL_TOKENS.values() if t not in first_line]
    if missing:
        raise ValueError(f"{source}: the vocabulary lacks required special token(s) {missing}.")


def _check_text(text, where):
    if isinstance(text, str):
        return text
    if isinstance(text, np.str_):
        return str(text)
    if isinstance(text, (bytes, np.bytes_)):
        try:
            return bytes(text).decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(
                f"{where} is bytes that are not valid UTF-8 ({error.reason} at byte {error.start})."
            ) from None
    raise TypeError(f"{where} is {type(text).__name__} {text!r:.60}, expected str.")


@keras.saving.register_keras_serializable(package="distilbert_hub")
class DistilBertTokenizer:
    """WordPiece tokenizer equal to `transformers`' DistilBERT/BERT tokenizer.

    The engine is Hugging Face `tokenizers` (Rust), configured exactly as
    `transformers.BertTokenizer` configures it: BERT normalizer (clean text,
    CJK spacing, accents, lowercase), BERT pre-tokenizer, WordPiece with
    `[UNK]` and a 100-character word limit. No TensorFlow anywhere.

    Calls return ids without special tokens, like KerasHub: a string gives a
    1-D int32 array, a list of strings a list of such arrays, and with
    `sequence_length` a dense int32 array padded with the pad id and truncated.

    Options left at None take what an HF `tokenizer.json` says, else the
    default shown; an explicit option that contradicts the file raises.

    Args:
        vocabulary: list of tokens, path to a `vocab.txt`, or path to an HF
            `tokenizer.json` with a WordPiece model (its normalizer is honoured).
        lowercase: lowercase the text (HF `do_lower_case`); default False.
        strip_accents: remove accents; None follows `lowercase`, as in HF.
        tokenize_chinese_chars: put spaces around CJK characters; default True.
        special_tokens_in_strings: map literal "[MASK]", "[CLS]" ... in the text
            to their ids (HF's default); if False (default, as KerasHub) they
            are ordinary text.
        sequence_length: default length for dense output; None gives ragged.
    """

    def __init__(
        self,
        vocabulary=None,
        lowercase=None,
        strip_accents=None,
        tokenize_chinese_chars=None,
        special_tokens_in_strings=None,
        sequence_length=None,
    ):
        if vocabulary is None:
            raise ValueError("DistilBertTokenizer needs a vocabulary (list, vocab.txt or tokenizer.json).")
        tokens, found, source = _read_vocabulary(vocabulary)
        _check_vocabulary(tokens, source)
        options = merge_options(
            found,
            {
                "lowercase": lowercase,
                "strip_accents": strip_accents,
                "tokenize_chinese_chars": tokenize_chinese_chars,
                "special_tokens_in_strings": special_tokens_in_strings,
            },
            source,
        )
        self.lowercase = bool(options.get("lowercase", False))
        strip_accents = options.get("strip_accents")
        self.strip_accents = strip_accents if strip_accents is None else bool(strip_accents)
        self.tokenize_chinese_chars = bool(options.get("tokenize_chinese_chars", True))
        self.special_tokens_in_strings = bool(options.get("special_tokens_in_strings", False))
        self.sequence_length = sequence_length
        self._vocabulary = tokens
        self._token_to_id = {token: i for i, token in enumerate(tokens)}
        for attribute, token in SPECIAL_TOKENS.items():
            setattr(self, attribute, token)
            setattr(self, f"{attribute}_id", self._token_to_id[token])
        self._tokenizer = self._build_engine()

    def _build_engine(self):
        engine = Tokenizer(
            models.WordPiece(
                self._token_to_id,
                unk_token=self.unk_token,
                max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD,
            )
        )
        engine.normalizer = normalizers.BertNormalizer(
            clean_text=True,
            handle_chinese_chars=self.tokenize_chinese_chars,
            strip_accents=self.strip_accents,
            lowercase=self.lowercase,
        )
        engine.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        engine.decoder = decoders.WordPiece(prefix="##")
        engine.add_special_tokens(
            [AddedToken(token, special=True, normalized=False) for token in SPECIAL_TOKENS.values()]
        )
        engine.encode_special_tokens = not self.special_tokens_in_strings
        return engine

    # --- vocabulary -------------------------------------------------------------

    def vocabulary_size(self):
        return len(self._vocabulary)

    def get_vocabulary(self):
        return list(self._vocabulary)

    def id_to_token(self, id):
        if not 0 <= int(id) < len(self._vocabulary):
            raise ValueError(f"id {id} is outside [0, vocabulary_size={len(self._vocabulary)}).")
        return self._vocabulary[int(id)]

    def token_to_id(self, token):
        if token not in self._token_to_id:
            raise ValueError(f"token {token!r} is not in the vocabulary.")
        return self._token_to_id[token]

    # --- tokenizing -------------------------------------------------------------

    def _texts(self, inputs):
        if inputs is None:
            raise TypeError("DistilBertTokenizer got None; expected a string or a list of strings.")
        if isinstance(inputs, (str, bytes, np.str_, np.bytes_)):
            return [_check_text(inputs, "the input")], True
        if isinstance(inputs, np.ndarray):
            if inputs.ndim == 0:
                return [_check_text(inputs.item(), "the input")], True
            inputs = inputs.reshape(-1).tolist()
        try:
            items = list(inputs)
        except TypeError:
            raise TypeError(
                f"DistilBertTokenizer got {type(inputs).__name__}; expected a string or a list of strings."
            ) from None
        return [_check_text(text, f"input item {i}") for i, text in enumerate(items)], False

    def _encode(self, texts):
        return self._tokenizer.encode_batch_fast(texts, add_special_tokens=False)

    def tokenize(self, inputs, sequence_length=None):
        """Ids for a string (1-D) or a list of strings (list of 1-D, or 2-D
        padded to `sequence_length`)."""
        texts, single = self._texts(inputs)
        sequence_length = sequence_length or self.sequence_length
        if sequence_length is None:
            ids = [np.asarray(e.ids, dtype=np.int32) for e in self._encode(texts)]
            return ids[0] if single else ids
        dense = np.full((len(texts), int(sequence_length)), self.pad_token_id, dtype=np.int32)
        for row, encoding in enumerate(self._encode(texts)):
            row_ids = encoding.ids[:sequence_length]
            dense[row, : len(row_ids)] = row_ids
        return dense[0] if single else dense

    __call__ = tokenize

    def tokenize_with_offsets(self, inputs):
        """(ids, offsets): offsets `[n, 2]` are character start/end positions in
        the original string (before normalization) for every token."""
        texts, single = self._texts(inputs)
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=False)
        result = [
            (np.asarray(e.ids, dtype=np.int32), np.asarray(e.offsets, dtype=np.int32).reshape(-1, 2)) for e in encodings
        ]
        return result[0] if single else result

    def tokenize_words(self, word_lists):
        """For pre-split words (a list of lists of strings): per row the ids
        and, per id, the index of the word it came from (as HF's
        `is_split_into_words=True` and `word_ids()`)."""
        rows = []
        for i, words in enumerate(word_lists):
            if isinstance(words, (str, bytes)) or words is None:
                raise TypeError(f"row {i} must be a list of words, got {type(words).__name__}.")
            rows.append([_check_text(w, f"row {i} word {j}") for j, w in enumerate(words)])
        encodings = self._tokenizer.encode_batch(rows, is_pretokenized=True, add_special_tokens=False)
        return [(np.asarray(e.ids, np.int32), np.asarray(e.word_ids, np.int32)) for e in encodings]

    def pair_windows(self, first_texts, second_texts, sequence_length, stride):
        """`[CLS] a [SEP] b [SEP]` windows of `sequence_length` that cut only
        the second text, consecutive windows sharing `stride` tokens (HF's
        `truncation="only_second", return_overflowing_tokens=True`).
        Returns the Rust encodings, one list of windows per pair."""
        engine = self.hf_engine()
        engine.enable_truncation(sequence_length, stride=stride, strategy="only_second")
        windows = []
        for row, (a, b) in enumerate(zip(first_texts, second_texts)):
            a, b = _check_text(a, f"question {row}"), _check_text(b, f"context {row}")
            room = sequence_length - 3 - len(self._encode([a])[0].ids)
            if room <= stride:
                raise ValueError(
                    f"row {row}: the question leaves {max(room, 0)} tokens for the context in {sequence_length}, "
                    f"not more than stride={stride}; shorten the question or raise sequence_length."
                )
            try:
                encoding = engine.encode(a, b)
            except (Exception, BaseException) as error:  # the Rust side may panic (a BaseException)
                if isinstance(error, (KeyboardInterrupt, SystemExit)):
                    raise
                raise ValueError(
                    f"row {row}: the first text does not leave room for the second in {sequence_length} "
                    f"tokens with stride {stride} ({error})."
                ) from None
            row_windows = [encoding] + list(encoding.overflowing)
            _check_windows_cover(row_windows, self._encode([b])[0].ids, stride, row)
            windows.append(row_windows)
        return windows

    def hf_engine(self):
        """A copy of the Rust tokenizer with `transformers`' `[CLS] a [SEP] b
        [SEP]` post-processor, as an HF `tokenizer.json` describes it."""
        engine = Tokenizer.from_str(self._tokenizer.to_str())
        engine.encode_special_tokens = self._tokenizer.encode_special_tokens
        engine.post_processor = processors.TemplateProcessing(
            single=f"{self.cls_token} $A {self.sep_token}",
            pair=f"{self.cls_token} $A {self.sep_token} $B:1 {self.sep_token}:1",
            special_tokens=[(self.cls_token, self.cls_token_id), (self.sep_token, self.sep_token_id)],
        )
        return engine

    def encode_packed(self, inputs, special_tokens_in_strings=None):
        """Rust encodings of `[CLS] text [SEP]` as transformers' fast
        tokenizer makes them (ids, offsets, `special_tokens_mask`), one per
        text. `special_tokens_in_strings` overrides the tokenizer's own
        setting (fill-mask must find a literal "[MASK]")."""
        texts, single = self._texts(inputs)
        engine = self.hf_engine()
        if special_tokens_in_strings is not None:
            engine.encode_special_tokens = not special_tokens_in_strings
        encodings = engine.encode_batch(texts, add_special_tokens=True)
        return encodings[0] if single else encodings

    def tokens_to_string(self, tokens):
        """Word pieces joined back into text by the WordPiece decoder, as
        transformers' `convert_tokens_to_string`."""
        return self._tokenizer.decoder.decode([str(token) for token in tokens])

    def detokenize(self, ids, skip_special_tokens=False):
        """Text for 1-D ids, or a list of texts for 2-D ids / a list of 1-D ids
        (without `[CLS]`, `[SEP]`, `[PAD]`, `[MASK]`, `[UNK]` if
        `skip_special_tokens`, as transformers' `decode`)."""
        if isinstance(ids, (list, tuple)):
            batched = len(ids) > 0 and np.ndim(ids[0]) > 0
        else:
            ids = np.asarray(ids)
            if ids.ndim not in (1, 2):
                raise ValueError(f"detokenize takes 1-D or 2-D ids; got shape {ids.shape}.")
            batched = ids.ndim == 2
        texts = [self._decode_row(row, skip_special_tokens) for row in (ids if batched else [ids])]
        return texts if batched else texts[0]

    def _decode_row(self, row, skip_special_tokens=False):
        row = [int(i) for i in np.asarray(row, dtype=np.int64).reshape(-1)]
        bad = [i for i in row if not 0 <= i < len(self._vocabulary)]
        if bad:
            raise ValueError(f"id {bad[0]} is outside [0, vocabulary_size={len(self._vocabulary)}).")
        return self._tokenizer.decode(row, skip_special_tokens=bool(skip_special_tokens))

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """The tokenizer of a preset name, `hf://org/name`, an HF checkpoint
        directory (`tokenizer.json`, `tokenizer_config.json`, `vocab.txt`) or a
        `save_to_preset` directory. Options the files set are honoured; an
        explicit argument that contradicts them raises."""
        return preset_utils.get_preset_loader(preset).load_tokenizer(cls, **kwargs)

    def save_to_preset(self, preset_dir):
        """Config and vocabulary (as a file asset) in a new directory."""
        preset_utils.get_preset_saver(preset_dir).save_tokenizer(self)

    def get_config(self):
        return {
            "vocabulary": self.get_vocabulary(),
            "lowercase": self.lowercase,
            "strip_accents": self.strip_accents,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
            "special_tokens_in_strings": self.special_tokens_in_strings,
            "sequence_length": self.sequence_length,
        }

    @classmethod
    def from_config(cls, config):
        if isinstance(config.get("vocabulary"), (str, os.PathLike)) and _in_safe_mode():
            raise ValueError(
                f"a tokenizer config that names the file {os.fspath(config['vocabulary'])!r} as its vocabulary "
                "cannot be loaded with safe_mode=True: a model archive must not read files outside itself."
            )
        return cls(**config)


def _check_windows_cover(windows, context_ids, stride, row):
    """Consecutive windows share exactly `stride` context tokens and together
    hold the whole context. `tokenizers` 0.23.1 and 0.23.2 break this (they
    drop the context's tail); refuse rather than answer from a cut context."""
    covered = []
    for window in windows:
        ids = [i for i, sequence in zip(window.ids, window.sequence_ids) if sequence == 1]
        overlap = min(stride, len(covered))
        if covered and ids[:overlap] != covered[len(covered) - overlap :]:
            break
        covered += ids[overlap:]
    if covered != list(context_ids):
        raise RuntimeError(
            f"row {row}: the overflow windows of tokenizers {tokenizers.__version__} do not cover the context "
            f"({len(covered)} of {len(context_ids)} tokens in order); tokenizers 0.23.1 and 0.23.2 have this "
            "bug: install another version (pip install 'tokenizers!=0.23.1,!=0.23.2')."
        )
