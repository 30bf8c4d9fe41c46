"""atheris (libFuzzer) fuzzing of the checkpoint readers: safetensors,
JSON config, vocab.txt and tokenizer.json.

    python tools/fuzz/fuzz_readers.py TARGET [libFuzzer flags, e.g. -max_total_time=15]
    python tools/fuzz/fuzz_readers.py --all SECONDS_EACH     # every target, each in its own process

A reader may refuse an input only with the library's own error (a
`ValueError` subclass naming the file); any other exception, a hang or a
crash is a finding. Run by `tox -e fuzz` for a bounded time.
"""

import contextlib
import os
import struct
import subprocess
import sys
import tempfile

_HEADER = b'{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
TARGETS = ("safetensors", "config", "vocabulary", "tokenizer_json")
SEEDS = {
    "safetensors": struct.pack("<Q", len(_HEADER)) + _HEADER + struct.pack("<2f", 1.0, 2.0),
    "config": b'{"model_type":"distilbert","vocab_size":90,"n_layers":2,"n_heads":4,"dim":32,"hidden_dim":48}',
    "vocabulary": b"[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n##s\n",
    "tokenizer_json": b'{"model":{"type":"WordPiece","vocab":{"[PAD]":0,"[UNK]":1,"[CLS]":2,"[SEP]":3,"[MASK]":4}},'
    b'"normalizer":{"type":"BertNormalizer","lowercase":true},"pre_tokenizer":{"type":"BertPreTokenizer"},'
    b'"added_tokens":[{"id":0,"content":"[PAD]","special":true}]}',
}


def make_target(name, scratch):
    import numpy as np

    from distilbert_hub.convert import hf_checkpoint, hf_config, hf_tokenizer
    from distilbert_hub.distilbert_tokenizer import DistilBertTokenizer, read_vocabulary_lines

    path = os.path.join(scratch, {"safetensors": "model.safetensors", "config": "config.json"}.get(name, name))

    def read(data):
        with open(path, "wb") as f:
            f.write(data)
        if name == "safetensors":
            for tensor in hf_checkpoint.read_safetensors(path).values():
                np.asarray(tensor)
        elif name == "config":
            hf_config.backbone_kwargs_from_hf_config(hf_checkpoint.read_json(path, "config.json"), path)
        elif name == "vocabulary":
            DistilBertTokenizer(read_vocabulary_lines(path))
        else:
            tokens, options = hf_tokenizer.read_tokenizer_json(path)
            DistilBertTokenizer(tokens, **options)

    def target(data):
        with contextlib.suppress(ValueError):  # the library's refusal (CheckpointError, the tokenizer's checks)
            read(data)

    return target


def main(argv):
    if argv[:1] == ["--all"]:
        seconds = argv[1] if len(argv) > 1 else "15"
        failed = []
        for name in TARGETS:
            print(f"fuzzing {name} for {seconds} s", flush=True)
            run = subprocess.run([sys.executable, __file__, name, f"-max_total_time={seconds}", "-timeout=10"])
            if run.returncode != 0:
                failed.append(name)
        if failed:
            print(f"fuzzing found crashes in: {failed}", file=sys.stderr)
        return 1 if failed else 0
    import atheris

    name = argv[0]
    with atheris.instrument_imports(include=["distilbert_hub"]):
        import distilbert_hub.convert.hf_checkpoint
        import distilbert_hub.convert.hf_config
        import distilbert_hub.convert.hf_tokenizer
        import distilbert_hub.distilbert_tokenizer  # noqa: F401
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as scratch:
        corpus = os.path.join(scratch, "corpus")
        os.mkdir(corpus)
        with open(os.path.join(corpus, "seed"), "wb") as f:
            f.write(SEEDS[name])
        work = os.path.join(scratch, "work")
        os.mkdir(work)
        atheris.Setup([sys.argv[0], *argv[1:], corpus], make_target(name, work))
        atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
