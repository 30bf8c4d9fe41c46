"""DistilBERT for Keras 3, numerically equal to Hugging Face `transformers`."""

from distilbert_hub.distilbert_backbone import DistilBertBackbone
from distilbert_hub.distilbert_masked_lm import DistilBertMaskedLM
from distilbert_hub.distilbert_masked_lm_preprocessor import DistilBertMaskedLMPreprocessor
from distilbert_hub.distilbert_multiple_choice import DistilBertMultipleChoice
from distilbert_hub.distilbert_multiple_choice_preprocessor import DistilBertMultipleChoicePreprocessor
from distilbert_hub.distilbert_question_answerer import DistilBertQuestionAnswerer
from distilbert_hub.distilbert_question_answerer_preprocessor import DistilBertQuestionAnswererPreprocessor
from distilbert_hub.distilbert_text_classifier import DistilBertTextClassifier
from distilbert_hub.distilbert_text_classifier_preprocessor import DistilBertTextClassifierPreprocessor
from distilbert_hub.distilbert_text_embedder import DistilBertTextEmbedder
from distilbert_hub.distilbert_token_classifier import DistilBertTokenClassifier
from distilbert_hub.distilbert_token_classifier_preprocessor import DistilBertTokenClassifierPreprocessor
from distilbert_hub.distilbert_tokenizer import DistilBertTokenizer
from distilbert_hub.training import LinearWarmupDecay, TorchAdamW, micro_batches, trainer_optimizer
from distilbert_hub.version import __version__ as __version__

__all__ = [
    "DistilBertBackbone",
    "DistilBertMaskedLM",
    "DistilBertMaskedLMPreprocessor",
    "DistilBertMultipleChoice",
    "DistilBertMultipleChoicePreprocessor",
    "DistilBertQuestionAnswerer",
    "DistilBertQuestionAnswererPreprocessor",
    "DistilBertTextClassifier",
    "DistilBertTextClassifierPreprocessor",
    "DistilBertTextEmbedder",
    "DistilBertTokenClassifier",
    "DistilBertTokenClassifierPreprocessor",
    "DistilBertTokenizer",
    "LinearWarmupDecay",
    "TorchAdamW",
    "micro_batches",
    "trainer_optimizer",
]

# Last: the preset formats and the ONNX exporter import the model classes
# above, which reach them through `preset_utils` (the import layers run one way).
from distilbert_hub import preset_utils
from distilbert_hub.convert import hf_config, hf_heads, hf_weights, loaders, preset
from distilbert_hub.export import onnx

preset_utils.register(
    get_preset_loader=loaders.get_preset_loader,
    get_preset_saver=preset.PresetSaver,
    export_to_transformers=preset.export_to_transformers,
    export_onnx=onnx.export_onnx,
    # The deprecated task attributes (`Task.hf_architecture` and the others).
    hf_architecture=hf_heads.architecture_of,
    head_weight_entries=hf_weights.head_weight_entries,
    head_kwargs_from_hf_config=hf_config.head_kwargs_from_hf_config,
    hf_config_updates=hf_config.hf_config_from_task,
)
del hf_config, hf_heads, hf_weights, loaders, preset, onnx
