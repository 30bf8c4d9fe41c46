"""Inference strategies: faster ways for `predict` to compute what the
reference layers (`distilbert_hub.layers`) compute, from the same variables.

`predict_step` picks one (`strategy_for`) and hands it to the backbone for that
step (`DistilBertBackbone.inference`); every other call (`__call__`, training,
`hidden_states_model`) runs the reference layers. The harness runs every
golden through the reference and through each strategy that applies on the
backend (`strategies_on_this_backend`).
"""

import keras

from distilbert_hub.inference.first_token import FirstTokenOnly
from distilbert_hub.inference.strategy import InferenceStrategy
from distilbert_hub.inference.torch_kernels import TorchKernels


def strategy_for(reads_first_token_only):
    """What `predict` runs for a model whose outputs read every token, or the
    first token only; None for the reference layers."""
    if keras.backend.backend() == "torch":
        return TorchKernels(first_token_only=reads_first_token_only)
    return FirstTokenOnly() if reads_first_token_only else None


def strategies_on_this_backend():
    """Every strategy that runs on the current backend."""
    return [s for s in (FirstTokenOnly(), TorchKernels(False), TorchKernels(True)) if s.applies()]


__all__ = ["FirstTokenOnly", "InferenceStrategy", "TorchKernels", "strategies_on_this_backend", "strategy_for"]
