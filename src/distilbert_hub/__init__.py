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
__version__ = "0.1.0"

# Last: the preset loaders and writers import the model classes above and
# register themselves with `preset_utils`, through which `from_preset` reaches them.
from distilbert_hub.convert import loaders as _loaders  # noqa: F401
