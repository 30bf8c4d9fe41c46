"""A bug inside an inference strategy must fail the goldens run through it
(tests/test_inference_strategies.py), on every backend the strategy runs on."""

import keras
import pytest

from distilbert_hub.inference import FirstTokenOnly, TorchKernels, torch_kernels
from distilbert_hub.inference import strategy as strategy_module
from harness.compare import assert_all_match
from harness.golden import load_case
from harness.inference_runs import compare_backbone_case, int8_kernel_error

CASE = "backbone_gelu_padded"  # gelu, rows of several lengths


def tanh_gelu(x, activation):
    return keras.ops.gelu(x, approximate=True)


def attention_scaled(factor):
    original = TorchKernels.attend

    def attend(self, attention, query, *args):
        return original(self, attention, query * factor, *args)

    return attend


def without_bias(strategy, layer, x):
    import torch

    return torch.nn.functional.linear(x, layer.kernel.value.T)


def one_real_token_dropped(original):
    def of(is_real, first_token_read=False):
        tokens = original(is_real, first_token_read)
        if tokens is not None:
            tokens.rows = tokens.rows[:-1]
        return tokens

    return of


MUTANTS = {
    "first_token: tanh gelu in the last layer": (
        FirstTokenOnly(),
        lambda mp: mp.setattr(strategy_module, "apply_activation", tanh_gelu),
    ),
    "torch: attention scores 2% warmer": (
        TorchKernels("every_token"),
        lambda mp: mp.setattr(TorchKernels, "attend", attention_scaled(1.02)),
    ),
    "torch: Dense without its bias": (
        TorchKernels("every_token"),
        lambda mp: mp.setattr(TorchKernels, "dense", without_bias),
    ),
    **{
        f"torch reading {reads}: the last real token dropped": (
            TorchKernels(reads),
            lambda mp: mp.setattr(torch_kernels.RealTokens, "of", one_real_token_dropped(torch_kernels.RealTokens.of)),
        )
        for reads in ("real_tokens", "first_token")
    },
}


@pytest.mark.parametrize("name", sorted(name for name, (strategy, _) in MUTANTS.items() if strategy.applies()))
def test_a_bug_inside_a_strategy_fails_its_goldens(monkeypatch, name):
    strategy, mutate = MUTANTS[name]
    golden = load_case(CASE)
    assert_all_match(compare_backbone_case(golden, strategy))  # the strategy itself passes
    mutate(monkeypatch)
    with pytest.raises(AssertionError, match="differ from the transformers golden"):
        assert_all_match(compare_backbone_case(golden, strategy))


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="the integer GEMM is torch's")
def test_a_bug_in_the_int8_kernel_fails_its_check(monkeypatch):
    golden = load_case(CASE)
    assert int8_kernel_error(golden, "every_token") < 1e-5
    original = torch_kernels.int8_dense
    monkeypatch.setattr(torch_kernels, "int8_dense", lambda layer, x: original(layer, x) * 1.001)
    assert int8_kernel_error(golden, "every_token") > 1e-5
