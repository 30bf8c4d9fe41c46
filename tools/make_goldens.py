#!/usr/bin/env python
"""Write the golden files from Hugging Face `transformers` (the only writer).

    python tools/make_goldens.py                 # regenerate every case into goldens/
    python tools/make_goldens.py --only ID [ID]  # regenerate some cases
    python tools/make_goldens.py --out DIR       # write somewhere else
    python tools/make_goldens.py --check         # fail if goldens/ is stale

Runs the reference on CPU, eager attention, one thread, deterministic torch,
with weights and inputs drawn from numpy generators seeded by each case's id,
and with the CPU kernels pinned to one instruction set (PINNED_KERNELS), so
an AVX2-only and an AVX-512 machine regenerate the same bits.
Files are written into a temporary folder and moved into place only when every
case has been built. `--check` regenerates into a temporary folder and
compares content: attributes, config, inputs and weights exactly, outputs
within CHECK_ATOL; added, removed or changed cases fail.
"""

import argparse
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

# torch picks float32 kernels by the CPU's instruction set: its own vectorized
# ops (softmax, LayerNorm, GELU) by ATen's CPU capability, matmuls in MKL by
# MKL's code branch, and some in oneDNN by its ISA. An AVX2-only machine and an AVX-512 one then sum in a
# different order and the goldens move by up to 4e-6 (measured: an emulated
# AVX2 run against a native AVX-512 one). Pinning both to their portable
# branch makes regeneration bitwise identical across x86 CPUs (measured: 0.0
# between the native and the emulated AVX2 run, over every case). Both are
# read once when torch and MKL start, so they must be set before the process
# imports torch: `main()` re-executes itself with them, and the tox envs that
# call into this module from pytest set them in `set_env`.
PINNED_KERNELS = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "SSE41"}

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "src"))

import numpy as np  # noqa: E402

from harness import golden as golden_io  # noqa: E402

# Regeneration with the pinned versions and kernels is bitwise identical on
# AVX2 and AVX-512 CPUs; this leaves room only for a BLAS or torch patch
# release reordering float32 sums.
CHECK_ATOL = 1e-6


def provenance(case):
    import tokenizers
    import torch
    import transformers

    return {
        "generator": "tools/make_goldens.py",
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "tokenizers_version": tokenizers.__version__,
        "numpy_version": np.__version__,
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "seed": case.seed,
        "dtype": "float32",
        "device": "cpu",
        "attn_implementation": "eager",
    }


def require_pinned_kernels():
    """Refuse to generate with CPU-dependent kernels (see PINNED_KERNELS)."""
    import torch

    unpinned = {k: os.environ.get(k) for k, v in PINNED_KERNELS.items() if os.environ.get(k) != v}
    capability = torch.backends.cpu.get_cpu_capability()
    if unpinned or capability != "DEFAULT":
        wanted = " ".join(f"{k}={v}" for k, v in PINNED_KERNELS.items())
        raise SystemExit(
            f"goldens must be generated with CPU kernels pinned ({wanted}, set before torch is imported); "
            f"this process has {unpinned or 'those variables'} and torch CPU capability {capability}. "
            "Run `python tools/make_goldens.py` or a tox env that sets them."
        )


def build(case):
    golden = case.build(case)
    golden.provenance = provenance(case) | {"tier": case.tier} | golden.provenance
    return golden


def generate(cases, directory):
    require_pinned_kernels()
    entries = {}
    for case in cases:
        golden = build(case)
        file_name = f"{case.case_id}.h5"
        golden_io.write_golden(Path(directory) / file_name, golden)
        entries[case.case_id] = golden_io.manifest_entry(
            golden_io.read_golden_file(Path(directory) / file_name), file_name
        )
        print(f"  built {case.case_id}", flush=True)
    return entries


def write(registry, only, out_dir):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    unknown = sorted(set(only or ()) - set(registry))
    if unknown:
        raise SystemExit(f"unknown case id(s): {', '.join(unknown)}")
    selected = [registry[i] for i in sorted(only or registry)]
    try:
        existing = golden_io.read_manifest(out_dir) if only else {}
    except golden_io.GoldenError:
        existing = {}
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    try:
        entries = generate(selected, staging)
        for case_id in entries:
            (staging / f"{case_id}.h5").replace(out_dir / f"{case_id}.h5")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    manifest = {k: v for k, v in existing.items() if k in registry} | entries
    if not only:
        for stale in set(p.stem for p in out_dir.glob("*.h5")) - set(manifest):
            (out_dir / f"{stale}.h5").unlink()
    golden_io.write_manifest(out_dir, manifest)
    print(f"wrote {len(entries)} case(s) to {out_dir}")


def differences(committed, fresh):
    """Human-readable differences between two goldens of one case."""
    found = []
    if committed.provenance != fresh.provenance:
        keys = sorted(
            k
            for k in set(committed.provenance) | set(fresh.provenance)
            if committed.provenance.get(k) != fresh.provenance.get(k)
        )
        found += [f"provenance '{k}': {committed.provenance.get(k)!r} -> {fresh.provenance.get(k)!r}" for k in keys]
    if committed.config != fresh.config:
        found.append("config differs")
    for group in ("inputs", "weights"):
        old, new = getattr(committed, group), getattr(fresh, group)
        if set(old) != set(new):
            found.append(f"{group} names differ: {sorted(set(old) ^ set(new))}")
            continue
        for name in sorted(old):
            a, b = old[name], new[name]
            same = (
                a == b
                if golden_io.is_texts(a) or golden_io.is_texts(b)
                else (np.asarray(a).shape == np.asarray(b).shape and np.array_equal(a, b))
            )
            if not same:
                found.append(f"{group}/{name} differs")
    if set(committed.outputs) != set(fresh.outputs):
        found.append(f"output names differ: {sorted(set(committed.outputs) ^ set(fresh.outputs))}")
        return found
    for name, old in sorted(committed.outputs.items()):
        new = fresh.outputs[name]
        if (old.atol, old.rtol, old.tolerance_reason, old.real_token_mask) != (
            new.atol,
            new.rtol,
            new.tolerance_reason,
            new.real_token_mask,
        ):
            found.append(f"outputs/{name}: tolerance attributes differ")
        if old.value.shape != new.value.shape:
            found.append(f"outputs/{name}: shape {old.value.shape} -> {new.value.shape}")
            continue
        error = np.abs(old.value.astype(np.float64) - new.value.astype(np.float64))
        if error.size and not error.max() <= CHECK_ATOL:
            index = np.unravel_index(np.nanargmax(error), error.shape)
            found.append(
                f"outputs/{name}: max abs change {error.max():.3e} at {tuple(map(int, index))} (> {CHECK_ATOL:g})"
            )
    return found


def check(registry, goldens_dir):
    problems = []
    try:
        manifest = golden_io.read_manifest(goldens_dir)
    except golden_io.GoldenError as error:
        raise SystemExit(f"--check: {error}") from None
    for case_id in sorted(set(manifest) - set(registry)):
        problems.append(f"{case_id}: in {goldens_dir}/MANIFEST.json but no longer in the registry (removed case)")
    for case_id in sorted(set(registry) - set(manifest)):
        problems.append(f"{case_id}: registered but has no committed golden (added case)")
    common = sorted(set(registry) & set(manifest))
    with tempfile.TemporaryDirectory(prefix="goldens-check-") as fresh_dir:
        generate([registry[case_id] for case_id in common], fresh_dir)
        for case_id in common:
            try:
                committed = golden_io.load_case(case_id, goldens_dir)
            except golden_io.GoldenError as error:
                problems.append(f"{case_id}: {error}")
                continue
            fresh = golden_io.read_golden_file(Path(fresh_dir) / f"{case_id}.h5")
            problems += [f"{case_id}: {d}" for d in differences(committed, fresh)]
    if problems:
        print("STALE goldens: regenerate with `python tools/make_goldens.py` and say why in the commit:")
        print("\n".join(f"  - {p}" for p in problems))
        return 1
    print(f"goldens are current: {len(registry)} case(s) match a fresh regeneration")
    return 0


def reexec_with_pinned_kernels():
    """Start this script again with PINNED_KERNELS in its environment."""
    if all(os.environ.get(k) == v for k, v in PINNED_KERNELS.items()):
        return
    if "torch" in sys.modules:
        return  # too late to pin: require_pinned_kernels() will say so
    os.execve(sys.executable, [sys.executable, *sys.argv], os.environ | PINNED_KERNELS)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", metavar="ID", help="case ids to regenerate")
    parser.add_argument("--out", default=str(golden_io.DEFAULT_GOLDENS_DIR), help="output folder")
    parser.add_argument("--check", action="store_true", help="fail if the goldens in --out are stale")
    parser.add_argument("--list", action="store_true", help="list the registered case ids")
    args = parser.parse_args(argv)

    from tools.golden_cases import load_all

    registry = load_all()
    if args.list:
        print("\n".join(sorted(registry)))
        return 0
    if args.check:
        return check(registry, Path(args.out))
    write(registry, args.only, args.out)
    return 0


if __name__ == "__main__":
    reexec_with_pinned_kernels()
    sys.exit(main())
