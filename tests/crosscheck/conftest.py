import pytest


@pytest.hookimpl(tryfirst=True)  # mark before `-m` deselects
def pytest_collection_modifyitems(config, items):
    for item in items:
        if "crosscheck" in item.path.parts:
            item.add_marker(pytest.mark.crosscheck)
