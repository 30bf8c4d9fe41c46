from distilbert_hub.layers.distilbert_attention import DistilBertAttention
from distilbert_hub.layers.distilbert_embedding import DistilBertEmbedding
from distilbert_hub.layers.distilbert_transformer_layer import DistilBertTransformerLayer

__all__ = ["DistilBertAttention", "DistilBertEmbedding", "DistilBertTransformerLayer"]
