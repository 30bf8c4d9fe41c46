"""Conversion between Hugging Face DistilBERT checkpoints and Keras models.

`loaders` reads each source format, `preset` writes presets and Hugging Face
checkpoints, `hf_heads` says what `transformers` calls each task head.
Importing `loaders` registers them with `distilbert_hub.preset_utils`, which
`distilbert_hub/__init__` does.
"""
