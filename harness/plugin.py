"""pytest plugin: report header, Hypothesis profiles, tier markers by folder."""

import hashlib
import importlib.metadata
import os
from pathlib import Path

import pytest

from harness.golden import DEFAULT_GOLDENS_DIR, MANIFEST_NAME

try:
    from hypothesis import HealthCheck, settings

    # CI: derandomized (same examples every run) and no deadline, since the
    # first call of a model compiles. dev: random, more examples.
    settings.register_profile(
        "ci",
        derandomize=True,
        deadline=None,
        max_examples=25,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    settings.register_profile("dev", deadline=None, max_examples=50, print_blob=True)
    settings.register_profile("thorough", deadline=None, max_examples=2000, print_blob=True)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # hypothesis is a test extra; the report does not need it
    pass

TIER_FOLDERS = {"large": "large", "extra_large": "extra_large"}


def _version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def pytest_report_header(config):
    backend = os.environ.get("KERAS_BACKEND", "tensorflow (keras default)")
    versions = {
        name: _version(name)
        for name in (
            "keras",
            "numpy",
            "jax",
            "jaxlib",
            "tensorflow",
            "tensorflow-cpu",
            "torch",
            "tokenizers",
            "transformers",
        )
    }
    manifest = Path(DEFAULT_GOLDENS_DIR) / MANIFEST_NAME
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()[:16] if manifest.is_file() else "missing"
    from harness.devices import current_profile

    profile = current_profile()
    return [
        f"distilbert-hub: KERAS_BACKEND={backend}, device {profile.device} "
        f"(tolerance floor {profile.atol_floor:g}: {profile.reason})",
        "versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v),
        f"goldens: {manifest} sha256 {digest}; hypothesis profile {os.environ.get('HYPOTHESIS_PROFILE', 'ci')}",
    ]


def pytest_configure(config):
    if "KERAS_BACKEND" in os.environ:
        from harness.devices import use_full_float32

        use_full_float32()


@pytest.hookimpl(tryfirst=True)  # mark before `-m` deselects
def pytest_collection_modifyitems(config, items):
    for item in items:
        parts = Path(str(item.path)).parts
        for folder, marker in TIER_FOLDERS.items():
            if "tests" in parts and folder in parts[parts.index("tests") :]:
                item.add_marker(getattr(pytest.mark, marker))
