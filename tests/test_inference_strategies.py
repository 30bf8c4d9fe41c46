"""Every backbone and head golden through each inference strategy that runs on
this backend (`distilbert_hub.inference`), at the golden's tolerance; the
reference layers run them in test_backbone_parity.py and test_head_parity.py.
A first-token strategy is compared at position 0 and on the heads that read
only it."""

import keras
import pytest

import distilbert_hub as hub
from distilbert_hub.inference import READS, strategy_for
from harness.compare import assert_all_match
from harness.golden import case_ids, load_case
from harness.inference_runs import compare_backbone_case, compare_head_case, int8_kernel_error, strategies_for
from harness.runner import backbone_from_golden, model_inputs, task_from_golden
from harness.testing import integer_gemm_calls, record_calls


@pytest.mark.parametrize("case_id", case_ids(kind="backbone"))
def test_backbone_goldens_through_every_strategy(case_id):
    golden = load_case(case_id)
    backbone = backbone_from_golden(golden)
    strategies = strategies_for(None)
    assert strategies, "every backend has a strategy (FirstTokenOnly)"
    assert_all_match([c for s in strategies for c in compare_backbone_case(golden, s, backbone)])


@pytest.mark.parametrize("case_id", case_ids(kind="head"))
def test_head_goldens_through_every_strategy(case_id):
    golden = load_case(case_id)
    task = task_from_golden(golden)
    strategies = strategies_for(type(task))
    comparisons = [c for s in strategies for c in compare_head_case(golden, s, task)]
    if not strategies:  # jax and tensorflow run the heads that read every token on the reference
        assert strategy_for(type(task).reads) is None
        return
    assert_all_match(comparisons)


PREDICTORS = {  # a model whose `predict` reads what the key names
    "every_token": lambda backbone: backbone,
    "real_tokens": lambda backbone: hub.DistilBertTextEmbedder(backbone),
    "first_token": lambda backbone: hub.DistilBertTextClassifier(backbone, num_classes=2),
}


# jax and tensorflow predict the backbone (and heads that read every token) with the reference layers.
@pytest.mark.parametrize("reads", [r for r in READS if strategy_for(r) is not None])
def test_predict_runs_the_strategy_that_strategy_for_picks(monkeypatch, reads):
    golden = load_case("backbone_gelu_padded")
    model = PREDICTORS[reads](backbone_from_golden(golden))
    assert getattr(model, "reads", "every_token") == reads  # a backbone reads every position
    chosen = strategy_for(reads)
    calls = record_calls(monkeypatch, type(chosen), "forward", lambda strategy, *args: repr(strategy))
    model.predict_on_batch(model_inputs(golden))
    assert calls == [repr(chosen)]


def test_strategy_for_names_what_it_takes():
    with pytest.raises(ValueError, match="reads must be one of"):
        strategy_for(True)


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="the integer GEMM is torch's")
@pytest.mark.parametrize("reads", READS)
@pytest.mark.parametrize("native", [True, False], ids=["int8_gemm", "float32_gemm"])
def test_int8_kernel_equals_keras_int8_dense(reads, native, monkeypatch):
    """Both GEMMs of the int8 products (torch's int32 one where the CPU has
    VNNI or AMX, float32 where not) sum them exactly, as Keras' int8 Dense."""
    calls = integer_gemm_calls(monkeypatch, native)
    assert int8_kernel_error(load_case("backbone_gelu_padded"), reads) < 1e-5
    assert bool(calls) == native
