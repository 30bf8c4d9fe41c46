"""Conversion between Hugging Face DistilBERT checkpoints and Keras models: `loaders` reads each source
format, `preset` writes presets and Hugging Face checkpoints, `hf_heads` says what `transformers` calls
each head. `distilbert_hub/__init__` registers their entry points with `preset_utils` for the model classes.
"""
