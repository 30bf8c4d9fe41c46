"""The conformance harness: goldens from `transformers`, comparisons, reports."""
