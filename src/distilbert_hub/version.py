"""The library version (its own module, so that code below `distilbert_hub/__init__` can read it)."""

__version__ = "0.1.0"
