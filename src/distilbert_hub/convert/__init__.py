"""Conversion between Hugging Face DistilBERT checkpoints and Keras models."""
