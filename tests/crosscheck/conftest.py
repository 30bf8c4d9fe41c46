import pytest

# Only the `crosscheck` tox env installs transformers (with torch); never the
# tensorflow env, where importing both aborts the process.
transformers = pytest.importorskip("transformers", reason="tox -e crosscheck installs transformers")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "crosscheck" in item.path.parts:
            item.add_marker(pytest.mark.crosscheck)
