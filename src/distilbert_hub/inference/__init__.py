"""Inference strategies: faster ways for `predict` to compute what the
reference layers (`distilbert_hub.layers`) compute, from the same variables.
`predict_step` hands one (`strategy_for`) to the backbone for that step
(`DistilBertBackbone.inference`); every other call runs the reference layers.
The harness runs every golden through each strategy that applies on the
backend (`strategies_on_this_backend`).
"""

from distilbert_hub.inference.first_token import FirstTokenOnly
from distilbert_hub.inference.strategy import READS, InferenceStrategy
from distilbert_hub.inference.torch_kernels import TorchKernels


def strategy_for(reads):
    """What `predict` runs for a caller that reads `reads` (one of `READS`) of
    the backbone's output; None for the reference layers. On jax and
    tensorflow the real tokens run padded: their count changes from batch to
    batch, and each count would compile anew."""
    strategy = TorchKernels(reads)  # refuses a `reads` outside READS
    if strategy.applies():
        return strategy
    return FirstTokenOnly() if reads == "first_token" else None


def strategies_on_this_backend():
    """Every strategy that runs on the current backend."""
    return [s for s in (FirstTokenOnly(), *(TorchKernels(reads) for reads in READS)) if s.applies()]


__all__ = ["READS", "FirstTokenOnly", "InferenceStrategy", "TorchKernels", "strategies_on_this_backend", "strategy_for"]
