#!/usr/bin/env python
"""Write the Hugging Face checkpoints the tests load, with `transformers`.

    python tools/make_checkpoints.py              # tiny checkpoints into harness/fixtures/checkpoints
    python tools/make_checkpoints.py --check      # fail if the committed ones differ from a fresh write
    python tools/make_checkpoints.py --hub-cache DIR [--tier large|extra_large]
                                                  # full-size presets as a Hugging Face cache folder

Tiny checkpoints are `save_pretrained` of the very models behind goldens
(same config, same seeded weights), so a checkpoint loaded through
`from_preset` must reproduce that golden's outputs on every backend:
`DistilBertModel` of `backbone_gelu_*` (single file, sharded, bf16,
pytorch_model.bin) and every `DistilBertFor*` of `head_*`. Each carries the
tokenizer files `transformers` writes for a small uncased vocabulary.

Full-size checkpoints (66M-135M seeded weights, not committed) are the
`preset_*` goldens' models, written into a Hugging Face cache layout
(`models--distilbert--.../snapshots/<revision>/`, `refs/main`) so that
`from_preset("distil_bert_base_en_uncased")` resolves them offline
(`HF_HUB_OFFLINE=1`). Beside the cache, `expected_tokens/<preset>.json`
holds the ids transformers' tokenizer gives for a fixed set of texts.
"""

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "src"))

import numpy as np  # noqa: E402

from tools import make_goldens  # noqa: E402

FIXTURES = REPO_ROOT / "harness" / "fixtures" / "checkpoints"
UNCASED_VOCABULARY = REPO_ROOT / "harness" / "fixtures" / "bert_base_uncased_vocab.txt"
REVISION = "0" * 40
TOKEN_TEXTS = [
    "Hello World, Café",
    "The quick brown fox jumps over the lazy dog.",
    "naïve résumé, Straße and 東京 in one [MASK] sentence!",
    "Ünïcödé ÀÉÎÕÜ çà et là",
]
WORDS = "the a of and to in is was it for on with as by at movie book city good bad quick brown fox".split()


def tiny_vocabulary(size):
    """`size` tokens: the specials, words, then pieces; ids 0-4 as BERT's."""
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "!", "?"] + WORDS
    letters = "abcdefghijklmnopqrstuvwxyz"
    tokens += [f"##{c}" for c in letters] + [c for c in letters if c not in tokens]
    extra = iter(f"##{a}{b}" for a in letters for b in letters)
    while len(tokens) < size:
        tokens.append(next(extra))
    return tokens[:size]


def hf_tokenizer(tokens, lowercase=True):
    from transformers import DistilBertTokenizer

    return DistilBertTokenizer(vocab={t: i for i, t in enumerate(tokens)}, do_lower_case=lowercase)


def seeded_model(architecture, config_options, seed_name, labels=None):
    import torch
    import transformers
    from transformers import DistilBertConfig

    from harness.seeded_weights import seeded_weights
    from tools.golden_cases import seed_for
    from tools.golden_cases.reference import deterministic_torch

    config = DistilBertConfig(
        attn_implementation="eager", **config_options, **({"num_labels": labels} if labels else {})
    )
    deterministic_torch()
    model = getattr(transformers, architecture)(config).eval()
    shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    weights = seeded_weights(shapes, seed_for(seed_name), keep=("vocab_projector.weight",))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=False)
    return model


def tiny_cases():
    """name -> (architecture, config, seed name, num_labels, save_pretrained kwargs, golden case)."""
    from tools.golden_cases.backbone import CONFIGS
    from tools.golden_cases.heads import CONFIG, HEADS

    cases = {
        "backbone": ("DistilBertModel", CONFIGS["gelu"], "backbone_gelu", None, {}, "backbone_gelu_padded"),
        "backbone_sharded": (
            "DistilBertModel",
            CONFIGS["gelu"],
            "backbone_gelu",
            None,
            {"max_shard_size": "20KB"},
            "backbone_gelu_padded",
        ),
        "backbone_pytorch_bin": (
            "DistilBertModel",
            CONFIGS["gelu"],
            "backbone_gelu",
            None,
            {"pytorch_bin": True},
            "backbone_gelu_padded",
        ),
        "backbone_bf16": (
            "DistilBertModel",
            CONFIGS["gelu"],
            "backbone_gelu",
            None,
            {"bf16": True},
            "backbone_gelu_padded",
        ),
    }
    for head, (architecture, extra) in HEADS.items():
        cases[f"head_{head}"] = (architecture, CONFIG, f"head_{head}", extra.get("num_labels"), {}, f"head_{head}")
    return cases


def write_tiny(directory):
    import torch

    directory = Path(directory)
    for name, (architecture, config, seed_name, labels, save_options, golden) in tiny_cases().items():
        model = seeded_model(architecture, config, seed_name, labels)
        save_options = dict(save_options)
        if save_options.pop("bf16", False):
            model = model.to(torch.bfloat16)
        pickled = save_options.pop("pytorch_bin", False)
        model.save_pretrained(directory / name, **save_options)
        if pickled:  # transformers 5 writes only safetensors: an older checkpoint's layout
            (directory / name / "model.safetensors").unlink()
            torch.save(model.state_dict(), directory / name / "pytorch_model.bin")
        hf_tokenizer(tiny_vocabulary(config["vocab_size"])).save_pretrained(directory / name)
        (directory / name / "golden_case.txt").write_text(golden + "\n")
        print(f"  wrote {name}", flush=True)


def read_tensors(path):
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        try:
            return load_file(path)
        except TypeError:  # bf16: compare the raw bytes instead
            return {"bytes": np.frombuffer(path.read_bytes(), np.uint8)}
    import torch

    return {k: v.float().numpy() for k, v in torch.load(path, weights_only=True).items()}


def differences(committed, fresh):
    found = []
    old = {p.relative_to(committed) for p in committed.rglob("*") if p.is_file()}
    new = {p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file()}
    found += [f"{p}: committed but not written any more" for p in sorted(old - new)]
    found += [f"{p}: written but not committed" for p in sorted(new - old)]
    for relative in sorted(old & new):
        a, b = committed / relative, fresh / relative
        if a.suffix in (".safetensors", ".bin"):
            ta, tb = read_tensors(a), read_tensors(b)
            if set(ta) != set(tb) or any(not np.array_equal(ta[k], tb[k]) for k in ta):
                found.append(f"{relative}: tensors differ")
        elif a.read_bytes() != b.read_bytes():
            found.append(f"{relative}: content differs")
    return found


def library_presets():
    """The library's preset table, read without importing the library (and keras)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "distilbert_presets", REPO_ROOT / "src" / "distilbert_hub" / "distilbert_presets.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.backbone_presets


def write_hub_cache(cache, tier):
    """Full-size preset checkpoints in a Hugging Face cache folder."""
    import torch

    backbone_presets = library_presets()
    from harness.golden import case_ids, load_case
    from harness.seeded_weights import seeded_weights, weights_digest

    cache = Path(cache)
    tiers = ("large",) if tier == "large" else ("large", "extra_large")
    for case_id in case_ids(kind="backbone", tiers=tiers):
        golden = load_case(case_id)
        preset = golden.provenance["preset"]
        repo_id = backbone_presets[preset]["metadata"]["hf_name"]
        snapshot = cache / f"models--{repo_id.replace('/', '--')}" / "snapshots" / REVISION
        if (snapshot / "config.json").is_file():
            print(f"  {preset}: already in {cache}", flush=True)
            continue
        from transformers import DistilBertConfig, DistilBertModel

        config = DistilBertConfig(**{k: v for k, v in golden.config.items() if k not in ("model_type",)})
        model = DistilBertModel(config).eval()
        shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
        weights = seeded_weights(shapes, golden.provenance["weights_seed"])
        if weights_digest(weights) != golden.provenance["weights_sha256"]:
            raise SystemExit(f"{case_id}: regenerated weights do not match the golden's digest.")
        model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache.parent if cache.parent.exists() else None))
        try:
            model.save_pretrained(staging)
            lowercase = backbone_presets[preset]["tokenizer"]["lowercase"]
            tokenizer = hf_tokenizer(preset_vocabulary(config.vocab_size), lowercase=lowercase)
            tokenizer.save_pretrained(staging)
            expected = {
                "texts": TOKEN_TEXTS,
                "lowercase": lowercase,
                "input_ids": [tokenizer(t)["input_ids"] for t in TOKEN_TEXTS],
            }
            snapshot.parent.mkdir(parents=True, exist_ok=True)
            (snapshot.parent.parent / "refs").mkdir(exist_ok=True)
            (snapshot.parent.parent / "refs" / "main").write_text(REVISION)
            shutil.move(staging, snapshot)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        (cache.parent / "expected_tokens").mkdir(parents=True, exist_ok=True)
        (cache.parent / "expected_tokens" / f"{preset}.json").write_text(json.dumps(expected))
        print(f"  {preset}: wrote {snapshot}", flush=True)


def preset_vocabulary(size):
    """The real uncased vocabulary, cut or extended with extra pieces to `size`
    (only the uncased preset has its real vocabulary here)."""
    tokens = UNCASED_VOCABULARY.read_text(encoding="utf-8").splitlines()
    if size <= len(tokens):
        return tokens[:size]
    letters = "abcdefghijklmnopqrstuvwxyz"
    known = set(tokens)
    extra = (f"##{a}{b}{c}" for a in letters for b in letters for c in letters + "0123456789")
    extra_words = (f"{a}{b}{c}{d}" for a in letters for b in letters for c in letters for d in letters)
    for token in extra:
        if len(tokens) >= size:
            break
        if token not in known:
            tokens.append(token)
    for token in extra_words:
        if len(tokens) >= size:
            break
        if token not in known:
            tokens.append(token)
    return tokens


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if the committed tiny checkpoints are stale")
    parser.add_argument("--hub-cache", help="write the full-size presets into this Hugging Face cache folder")
    parser.add_argument("--tier", choices=("large", "extra_large"), default="extra_large")
    args = parser.parse_args(argv)
    make_goldens.require_pinned_kernels()
    if args.hub_cache:
        write_hub_cache(args.hub_cache, args.tier)
        return 0
    with tempfile.TemporaryDirectory(prefix="checkpoints-") as fresh:
        write_tiny(fresh)
        if args.check:
            problems = differences(FIXTURES, Path(fresh))
            if problems:
                print("STALE checkpoint fixtures: regenerate with `python tools/make_checkpoints.py`:")
                print("\n".join(f"  - {p}" for p in problems))
                return 1
            print(f"checkpoint fixtures are current: {len(tiny_cases())} checkpoints match a fresh write")
            return 0
        shutil.rmtree(FIXTURES, ignore_errors=True)
        shutil.copytree(fresh, FIXTURES)
    print(f"wrote {len(tiny_cases())} checkpoints to {FIXTURES}")
    return 0


if __name__ == "__main__":
    make_goldens.reexec_with_pinned_kernels()
    sys.exit(main())
