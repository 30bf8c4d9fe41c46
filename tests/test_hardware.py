"""A bf16 policy on a CPU without native bf16 warns once; elsewhere it is silent."""

import warnings

import pytest

import distilbert_hub as hub
from distilbert_hub import hardware


@pytest.fixture
def fresh_warning_state(monkeypatch):
    monkeypatch.setattr(hardware, "_warned", False)
    monkeypatch.setattr(hardware, "accelerator_present", lambda: False)


def backbone(dtype):
    return hub.DistilBertBackbone(
        vocabulary_size=10, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=8, dtype=dtype
    )


def test_bf16_on_a_cpu_without_native_bf16_warns_once(fresh_warning_state, monkeypatch):
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"avx2", "fma", "avx512f"}))
    with pytest.warns(UserWarning, match="no native bf16 instructions"):
        backbone("mixed_bfloat16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        backbone("bfloat16")  # once per process


@pytest.mark.parametrize(
    "flags, dtype",
    [
        ({"avx2", "avx512_bf16"}, "bfloat16"),
        ({"avx2", "amx_bf16"}, "mixed_bfloat16"),
        ({"avx2"}, "float32"),
        ({"avx2"}, "mixed_float16"),
    ],
)
def test_no_warning_where_bf16_is_native_or_not_asked_for(fresh_warning_state, monkeypatch, flags, dtype):
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset(flags))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        backbone(dtype)


@pytest.mark.parametrize(
    "flags, onednn",
    [
        ({"avx2", "fma"}, False),
        ({"avx2", "avx512f", "avx512bw"}, False),
        ({"avx2", "avx512f", "avx512bw", "avx512vl", "avx512dq"}, True),
        ({"avx512bw", "avx512vl", "avx512dq", "amx_bf16"}, True),
        (None, True),
    ],
)
def test_torch_runs_reduced_precision_gemms_through_onednn_from_avx512_on(monkeypatch, flags, onednn):
    monkeypatch.setattr(hardware, "cpu_flags", lambda: None if flags is None else frozenset(flags))
    assert hardware.torch_reduced_precision_gemm_is_onednn() is onednn


@pytest.mark.parametrize(
    "flags, native",
    [
        ({"avx2", "fma"}, False),
        ({"avx2", "avx512f", "avx512bw", "avx512vl"}, False),
        ({"avx2", "avx512f", "avx512_vnni"}, True),
        ({"avx2", "avx_vnni"}, True),
        ({"avx512f", "amx_int8"}, True),
        (None, True),
    ],
)
def test_torch_takes_its_integer_gemm_where_the_cpu_has_int8_dot_products(monkeypatch, flags, native):
    monkeypatch.setattr(hardware, "cpu_flags", lambda: None if flags is None else frozenset(flags))
    assert hardware.torch_integer_gemm_is_native() is native
