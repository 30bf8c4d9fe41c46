"""DistilBERT for Keras 3, numerically equal to Hugging Face `transformers`."""

from distilbert_hub.distilbert_backbone import DistilBertBackbone
from distilbert_hub.distilbert_tokenizer import DistilBertTokenizer

__all__ = ["DistilBertBackbone", "DistilBertTokenizer"]
__version__ = "0.1.0"
