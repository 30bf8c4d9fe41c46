"""`export(path, format="onnx")`: the goldens' tiny models, exported on this
backend, run in ONNX Runtime within the goldens' tolerances of transformers
(every layer of every backbone golden, every head golden); at any batch and
length up to the position table; int8; and each refused model leaves nothing."""

import re

import keras
import numpy as np
import onnx
import pytest

from distilbert_hub.convert.__main__ import main
from distilbert_hub.export import run_onnx
from harness.compare import assert_all_match
from harness.golden import REPO_ROOT, case_ids, load_case
from harness.runner import backbone_from_golden, compare_outputs, task_from_golden

HEAD_CASES = case_ids(kind="head")
CHECKPOINTS = REPO_ROOT / "harness" / "fixtures" / "checkpoints"


def golden_model(case_id):
    golden = load_case(case_id)
    return golden, backbone_from_golden(golden) if golden.kind == "backbone" else task_from_golden(golden)


def onnx_outputs_as_golden(golden, path):
    """The export's outputs under the golden's names: hidden states per layer;
    the masked LM's logits (transformers gives every position) at the
    golden's mask positions."""
    outputs = run_onnx(path, golden.inputs["token_ids"], golden.inputs["padding_mask"])
    if golden.kind == "backbone":
        return {f"hidden_states/{int(name.split('.')[1]):02d}": v for name, v in outputs.items() if "." in name}
    if "mask_positions" in golden.inputs:
        positions = golden.inputs["mask_positions"][..., None].astype(np.int64)
        outputs["logits"] = np.take_along_axis(outputs["logits"], positions, axis=1)
    return outputs


@pytest.mark.parametrize("case_id", case_ids(kind="backbone"))
def test_every_layer_of_every_backbone_golden_matches_transformers(case_id, tmp_path):
    golden, backbone = golden_model(case_id)
    path = backbone.export(tmp_path / "backbone.onnx", format="onnx", hidden_states=True)
    outputs = run_onnx(path, golden.inputs["token_ids"], golden.inputs["padding_mask"])
    np.testing.assert_array_equal(outputs["last_hidden_state"], outputs[f"hidden_states.{backbone.num_layers}"])
    assert_all_match(compare_outputs(golden, onnx_outputs_as_golden(golden, path)))


@pytest.mark.parametrize("case_id", HEAD_CASES)
def test_every_head_golden_matches_transformers(case_id, tmp_path):
    golden, task = golden_model(case_id)
    path = task.export(tmp_path / "task.onnx", format="onnx")
    assert_all_match(compare_outputs(golden, onnx_outputs_as_golden(golden, path)))


def test_inputs_and_outputs_are_named_and_typed_as_optimum_exports_them(tmp_path):
    _, task = golden_model("head_question_answerer")
    proto = onnx.load(task.export(tmp_path / "qa.onnx", format="onnx"))
    assert proto.opset_import[0].version == 17
    axes = {i.name: [d.dim_param for d in i.type.tensor_type.shape.dim] for i in proto.graph.input}
    assert axes == {"input_ids": ["batch_size", "sequence_length"], "attention_mask": ["batch_size", "sequence_length"]}
    assert {i.type.tensor_type.elem_type for i in proto.graph.input} == {onnx.TensorProto.INT64}
    assert [o.name for o in proto.graph.output] == ["start_logits", "end_logits"]


def optimized_op_types(path, tmp_path):
    """The op types of the graph ONNX Runtime runs after its CPU fusions."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return [node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node]


@pytest.mark.parametrize("int8", [False, True])
def test_onnx_runtime_fuses_the_graph_as_the_speed_needs(int8, tmp_path):
    """What makes ONNX Runtime run the export at least as fast as optimum's
    (benchmarks/onnx_runtime.py): the key mask made once, not per layer;
    every float32 Dense of the encoder a Gemm (bias inside the product); and
    no SkipLayerNormalization, whose CPU kernel is slower than Add +
    LayerNormalization."""
    _, backbone = golden_model("backbone_gelu_padded")
    ops = optimized_op_types(backbone.export(tmp_path / "backbone.onnx", format="onnx", int8=int8), tmp_path)
    assert ops.count("Where") == 1, ops
    assert "SkipLayerNormalization" not in ops, ops
    assert ops.count("LayerNormalization") == 2 * backbone.num_layers + 1, ops
    dense_per_layer = 6  # query, key, value, attention output, intermediate, output
    if int8:
        assert (
            ops.count("MatMulInteger") + ops.count("DynamicQuantizeMatMul") + ops.count("MatMulIntegerToFloat")
            == dense_per_layer * backbone.num_layers
        ), ops
    else:
        assert ops.count("Gemm") == dense_per_layer * backbone.num_layers, ops


def random_batch(model, batch, length, rng):
    """Token ids and a padding mask (every row a different real length)."""
    shape = (batch, 3, length) if type(model).__name__ == "DistilBertMultipleChoice" else (batch, length)
    vocabulary = (model if hasattr(model, "vocabulary_size") else model.backbone).vocabulary_size
    real = rng.integers(1, length + 1, size=shape[:-1])
    real.flat[0] = length
    mask = (np.arange(length) < real[..., None]).astype(np.int32)
    return {"token_ids": (rng.integers(1, vocabulary, size=shape) * mask).astype(np.int32), "padding_mask": mask}


@pytest.mark.parametrize("case_id", ["backbone_relu_padded", *HEAD_CASES])
def test_one_export_runs_at_batch_1_and_7_and_lengths_1_17_and_the_maximum(case_id, tmp_path):
    """Against the Keras model (itself checked against transformers by the
    parity tests) on random inputs. Tolerance 1e-5: the goldens' own for
    float32 on CPU (two implementations of the same maths)."""
    _, model = golden_model(case_id)
    path = model.export(tmp_path / "model.onnx", format="onnx")
    maximum = (model if hasattr(model, "max_sequence_length") else model.backbone).max_sequence_length
    rng = np.random.default_rng(0)
    for batch in (1, 7):
        for length in (1, 17, maximum):
            x = random_batch(model, batch, length, rng)
            ours = run_onnx(path, x["token_ids"], x["padding_mask"])
            if "mask_positions" in model.input:  # logits at every real position, as the export gives them
                x["mask_positions"] = np.where(x["padding_mask"] == 1, np.arange(length, dtype=np.int32), 0)
            expected = model(x, training=False)
            expected = expected if isinstance(expected, dict) else {next(iter(ours)): expected}
            for name, value in expected.items():
                value = keras.ops.convert_to_numpy(value)
                mask = x["padding_mask"] if value.shape[:2] == x["padding_mask"].shape else np.ones(value.shape[:1])
                error = np.abs(ours[name] - value) * mask.reshape(mask.shape + (1,) * (value.ndim - mask.ndim))
                assert error.max() <= 1e-5, f"{case_id} {name} at batch {batch}, length {length}: {error.max():.2e}"
    too_long = random_batch(model, 1, maximum + 1, rng)
    with pytest.raises(Exception, match="(?i)add|broadcast|shape"):  # the position table ends at the maximum
        run_onnx(path, too_long["token_ids"], too_long["padding_mask"])


@pytest.mark.parametrize("case_id", ["backbone_gelu_padded", *HEAD_CASES])
def test_an_int8_export_quantizes_every_dense_layer_and_stays_close(case_id, tmp_path):
    """int8=True: ONNX Runtime's dynamic quantization (7-bit int8 weights
    with one scale per output column, uint8 activations quantized per call)
    on every Dense layer, the head's included. Tolerance: relative L2 error
    0.1; measured 3.2 to 9.4% on these goldens (AMD EPYC AVX2), whose
    32-wide seeded layers quantize coarsely (ranges set by a few large seeded
    values)."""
    golden, model = golden_model(case_id)
    options = {"hidden_states": True} if golden.kind == "backbone" else {}
    path = model.export(tmp_path / "model.int8.onnx", format="onnx", int8=True, **options)
    dense_layers = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.Dense)]
    if "mask_positions" in golden.inputs:
        dense_layers.append("the tied vocabulary projection")
    quantized = [node for node in onnx.load(path).graph.node if node.op_type == "MatMulInteger"]
    assert len(quantized) == len(dense_layers)
    outputs = onnx_outputs_as_golden(golden, path)
    for name, expected in golden.outputs.items():
        real = golden.inputs["padding_mask"] == 1
        actual, expected = outputs[name], expected.value
        if expected.shape[:2] == real.shape:  # per token: the real ones
            actual, expected = actual[real], expected[real]
        relative = np.linalg.norm(actual - expected) / np.linalg.norm(expected)
        assert relative <= 0.1, f"{case_id} {name}: int8 relative L2 error {relative:.3f}"


def test_a_merged_lora_model_exports_its_merged_weights(tmp_path):
    golden, backbone = golden_model("backbone_gelu_padded")
    backbone.enable_lora(2)
    for layer in backbone.lora_layers():
        layer.lora_kernel_b.assign(np.full(layer.lora_kernel_b.shape, 0.05, "float32"))
    backbone.merge_lora_weights()
    path = backbone.export(tmp_path / "merged.onnx", format="onnx")
    ours = run_onnx(path, golden.inputs["token_ids"], golden.inputs["padding_mask"])["last_hidden_state"]
    expected = keras.ops.convert_to_numpy(backbone({k: golden.inputs[k] for k in ("token_ids", "padding_mask")}))
    mask = golden.inputs["padding_mask"][..., None]
    assert np.abs((ours - expected) * mask).max() <= 1e-5


def lora_enabled(model):
    model.enable_lora(2)
    return model


def keras_quantized(model):
    model.quantize("int8")
    return model


REFUSED = {
    "a bfloat16 policy": (lambda g: backbone_from_golden(g, dtype="mixed_bfloat16"), {}, "float32 models only"),
    "a float16 policy": (lambda g: backbone_from_golden(g, dtype="float16"), {}, "float32 models only"),
    "Keras int8 quantization": (lambda g: keras_quantized(backbone_from_golden(g)), {}, "quantized by Keras"),
    "LoRA not merged": (lambda g: lora_enabled(backbone_from_golden(g)), {}, "merge_lora_weights"),
    "an unknown format": (backbone_from_golden, {"format": "onnx2"}, "Unrecognized format"),
    "hidden states of a task": (task_from_golden, {"hidden_states": True}, "for the backbone"),
}


@pytest.mark.parametrize("problem", REFUSED)
def test_a_refused_export_names_the_problem_and_writes_nothing(problem, tmp_path):
    make, options, message = REFUSED[problem]
    case = "head_text_classifier" if "task" in problem else "backbone_gelu_padded"
    model = make(load_case(case))
    with pytest.raises(ValueError, match=message):
        model.export(tmp_path / "model.onnx", **({"format": "onnx"} | options))
    assert list(tmp_path.iterdir()) == []


def test_an_existing_path_is_refused_and_left_as_it_was(tmp_path):
    _, backbone = golden_model("backbone_gelu_padded")
    target = tmp_path / "model.onnx"
    target.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="model.onnx already exists"):
        backbone.export(target, format="onnx", int8=True)
    assert target.read_bytes() == b"keep me"
    assert list(tmp_path.iterdir()) == [target]


def convert(capsys, *args):
    """The converter CLI in this process: (exit code, stdout, stderr)."""
    try:
        code = main([str(arg) for arg in args])
    except SystemExit as exit:  # argparse's usage errors
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


def test_the_converter_cli_exports_and_verifies_onnx(tmp_path, capsys):
    """Without transformers (the backend test envs) --verify compares with
    the Keras model loaded from the source."""
    source = CHECKPOINTS / "head_question_answerer"
    code, out, err = convert(capsys, source, tmp_path / "qa.onnx", "--to", "onnx", "--verify")
    assert code == 0, err
    for name in ("start_logits", "end_logits"):
        assert re.search(rf"{name}: max abs error on real tokens \S+ \(tolerance 0.0001\)", out), out
    code, _, err = convert(capsys, source, tmp_path / "strict.onnx", "--to", "onnx", "--verify", "--atol", "1e-12")
    assert code == 1 and "FAILED" in err
    code, _, err = convert(capsys, source, tmp_path / "qa.onnx", "--to", "onnx")
    assert code == 2 and "already exists" in err
    code, _, err = convert(capsys, source, tmp_path / "int8.onnx", "--to", "onnx", "--int8", "--verify")
    assert code == 2 and "--atol" in err
