"""The DistilBERT presets: KerasHub's names, the Hugging Face checkpoints they
correspond to, and their backbone and tokenizer configs."""

BASE = {
    "num_layers": 6,
    "num_heads": 12,
    "hidden_dim": 768,
    "intermediate_dim": 3072,
    "dropout": 0.1,
    "max_sequence_length": 512,
}

backbone_presets = {
    "distil_bert_base_en_uncased": {
        "metadata": {
            "description": "6-layer DistilBERT, uncased English (Wikipedia + BooksCorpus), distilled from BERT base.",
            "hf_name": "distilbert/distilbert-base-uncased",
            "params": 66362880,
        },
        "config": {"vocabulary_size": 30522, **BASE},
        "tokenizer": {"lowercase": True},
    },
    "distil_bert_base_en": {
        "metadata": {
            "description": "6-layer DistilBERT, cased English, distilled from BERT base cased.",
            "hf_name": "distilbert/distilbert-base-cased",
            "params": 65190912,
        },
        "config": {"vocabulary_size": 28996, **BASE},
        "tokenizer": {"lowercase": False},
    },
    "distil_bert_base_multi": {
        "metadata": {
            "description": "6-layer DistilBERT, cased, 104 languages, distilled from multilingual BERT base.",
            "hf_name": "distilbert/distilbert-base-multilingual-cased",
            "params": 134734080,
        },
        "config": {"vocabulary_size": 119547, **BASE},
        "tokenizer": {"lowercase": False},
    },
}
SMALLEST_PRESET = "distil_bert_base_en_uncased"
