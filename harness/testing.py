"""Shared test helpers, so each model test file stays short.

`ModelTestCase.run_model_test` checks what every model must do: output shape,
variable sequence lengths, `predict` equals `__call__`, `get_config` /
`from_config` round trip, `.keras` save and load. `run_golden_case` compares
every output of one golden case on the current backend.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import distilbert_hub as hub
from distilbert_hub.convert.hf_config import head_kwargs_from_hf_config
from harness.compare import assert_all_match
from harness.devices import accelerator
from harness.golden import REPO_ROOT, case_ids, load_case, read_manifest
from harness.runner import compare_outputs, run_backbone_case, run_case


def to_numpy(tree):
    return keras.tree.map_structure(keras.ops.convert_to_numpy, tree)


def assert_trees_close(actual, expected, atol=1e-6, what="outputs"):
    actual, expected = to_numpy(actual), to_numpy(expected)
    keras.tree.assert_same_structure(actual, expected)
    for a, e in zip(keras.tree.flatten(actual), keras.tree.flatten(expected)):
        assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
        error = float(np.max(np.abs(a.astype(np.float64) - e.astype(np.float64)))) if a.size else 0.0
        assert error <= atol, f"{what}: max abs difference {error:.3e} > {atol:g}"


def record_calls(monkeypatch, owner, name, record=lambda *args, **kwargs: args):
    """Wrap `owner.name` for the test: each call appends `record(*args,
    **kwargs)` (unless it returns None) to the returned list, then runs the
    original. For a method, `args` starts with the instance."""
    calls, original = [], getattr(owner, name)

    def recording(*args, **kwargs):
        entry = record(*args, **kwargs)
        if entry is not None:
            calls.append(entry)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, recording)
    return calls


def integer_gemm_calls(monkeypatch, native=True):
    """One entry per `torch._int_mm` call while the test runs, with the torch
    fast path told the CPU has (`native`) or lacks int8 dot products, whatever
    this CPU has: without them it multiplies the int8 values in float32."""
    import torch

    from distilbert_hub import hardware

    monkeypatch.setattr(hardware, "torch_integer_gemm_is_native", lambda: native)
    return record_calls(monkeypatch, torch, "_int_mm", lambda *args: 1)


# The one tiny backbone every test builds (2 layers, width 8): a fixture's
# `tiny_backbone_kwargs`, `tiny_backbone_for(tokenizer)` and the task
# factories all start from it.
TINY_BACKBONE = dict(num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16, max_sequence_length=16)


def tiny_backbone_kwargs(vocabulary_size, **overrides):
    """`DistilBertBackbone` arguments of the tests' tiny backbone."""
    return {"vocabulary_size": vocabulary_size, **TINY_BACKBONE, **overrides}


def tiny_backbone_for(tokenizer, **overrides):
    """The tests' tiny backbone over `tokenizer`'s vocabulary."""
    return hub.DistilBertBackbone(**tiny_backbone_kwargs(tokenizer.vocabulary_size(), **overrides))


def _task(cls, **defaults):
    def make(backbone, preprocessor=None, **overrides):
        return cls(backbone, preprocessor=preprocessor, **(defaults | overrides))

    return make


# Every model of the family on a given backbone: the one model factory of the
# tests. A task's entry takes an optional preprocessor and overrides of its
# arguments. tests/tasks/ test each task in its own file; cross-model tests
# (export, quantization, gradients) loop over all of them.
MODELS = {
    "backbone": lambda backbone: backbone,
    "text_classifier": _task(hub.DistilBertTextClassifier, num_classes=3, dropout=0.0),
    "masked_lm": _task(hub.DistilBertMaskedLM),
    "token_classifier": _task(hub.DistilBertTokenClassifier, num_classes=4),
    "question_answerer": _task(hub.DistilBertQuestionAnswerer),
    "multiple_choice": _task(hub.DistilBertMultipleChoice, dropout=0.0),
}
TASK_NAMES = [name for name in MODELS if name != "backbone"]


def model_inputs(name, vocabulary_size):
    """A padded batch of two rows for `MODELS[name]`."""
    rng = np.random.default_rng(0)
    x = {
        "token_ids": rng.integers(5, vocabulary_size, (2, 7)).astype("int32"),
        "padding_mask": np.ones((2, 7), "int32"),
    }
    x["padding_mask"][1, 5:] = 0
    if name == "masked_lm":
        x["mask_positions"] = np.array([[1, 2], [3, 4]], "int32")
    if name == "multiple_choice":
        x = {k: np.stack([v, v[::-1]], axis=1) for k, v in x.items()}
    return x


class LayerTestCase:
    def run_layer_test(self, cls, init_kwargs, inputs, expected_output_shape, extra_init_kwargs=None):
        """KerasHub's `run_layer_test`, trimmed to what matters here: the
        output shape (and `compute_output_shape` agreeing with it), every
        constructor argument in `get_config()`, an identical layer from
        `from_config(get_config())`, and the compute dtype of a mixed policy.
        `extra_init_kwargs` are arguments the config deliberately leaves out
        (the MLM head's tied embedding layer)."""
        extra = extra_init_kwargs or {}
        layer = cls(**init_kwargs, **extra)
        output = layer(*inputs)
        assert tuple(output.shape) == expected_output_shape, f"output shape {tuple(output.shape)}"
        shapes = [tuple(np.shape(x)) for x in inputs]
        assert tuple(layer.compute_output_shape(*shapes)) == expected_output_shape, "compute_output_shape"

        config = layer.get_config()
        for key, value in init_kwargs.items():
            assert config.get(key) == value, f"get_config()['{key}'] is {config.get(key)!r}, built with {value!r}"
        restored = cls.from_config({**config, **extra})
        assert restored.get_config() == config, "from_config(get_config()) changed the config"
        restored(*inputs)
        restored.set_weights(layer.get_weights())
        assert_trees_close(restored(*inputs), output, what="from_config round trip")

        mixed = cls.from_config({**config, **extra, "dtype": "mixed_bfloat16"})
        mixed_output = mixed(*inputs)
        assert keras.backend.standardize_dtype(mixed_output.dtype) == "bfloat16", "mixed_bfloat16 output dtype"
        self.check_each_dropout(cls, init_kwargs, extra, inputs)
        return layer

    @staticmethod
    def check_each_dropout(cls, init_kwargs, extra, inputs):
        """Each dropout rate, alone at 0.5, changes the outputs under
        `training=True` (two calls differ) and not otherwise."""
        rates = [name for name in init_kwargs if "dropout" in name]
        for rate in rates:
            layer = cls(**(init_kwargs | dict.fromkeys(rates, 0.0) | {rate: 0.5}), **extra)
            inference = to_numpy(layer(*inputs))
            assert_trees_close(layer(*inputs, training=False), inference, what=f"{rate} with training=False")
            first, second = to_numpy(layer(*inputs, training=True)), to_numpy(layer(*inputs, training=True))
            assert np.abs(first - second).max() > 1e-3, f"{rate}=0.5 drops nothing with training=True"


class ModelTestCase:
    def run_model_test(self, cls, init_kwargs, input_data, expected_output_shape, tmp_path):
        model = cls(**init_kwargs)
        output = model(input_data)
        shapes = keras.tree.map_structure(lambda x: tuple(x.shape), output)
        assert shapes == expected_output_shape, f"output shape {shapes} != {expected_output_shape}"

        self.check_variable_sequence_length(model, input_data)
        assert_trees_close(model.predict(input_data, verbose=0), output, atol=1e-5, what="predict vs call")

        config = model.get_config()
        for key in init_kwargs:
            assert key in config, f"get_config() lacks constructor argument '{key}'"
        self.check_round_trips(model, input_data, tmp_path)
        return model

    def check_round_trips(self, model, input_data, tmp_path):
        """`from_config(get_config())` and `.keras` save/load give the same
        config and the same outputs."""
        cls, config = type(model), model.get_config()
        output = model(input_data)
        restored = cls.from_config(config)
        assert restored.get_config() == config, "from_config(get_config()) changed the config"
        restored.set_weights(model.get_weights())
        assert_trees_close(restored(input_data), output, what="from_config round trip")

        path = tmp_path / "model.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        assert type(loaded) is cls
        assert loaded.get_config() == config
        assert_trees_close(loaded(input_data), output, what=".keras round trip")
        return loaded

    def check_variable_sequence_length(self, model, input_data):
        """The model runs on shorter inputs: lengths are not baked in."""
        if not isinstance(input_data, dict) or "token_ids" not in input_data:
            return
        length = np.shape(input_data["token_ids"])[-1]
        for shorter in sorted({1, max(1, length // 2)}):
            sliced = {k: np.asarray(v)[..., :shorter] for k, v in input_data.items()}
            output = model(sliced)
            first = keras.tree.flatten(output)[0]
            assert first.shape[1] == shorter or first.ndim == 2, f"length {shorter}: shape {first.shape}"

    def run_layer_norm_epsilon_test(self, name, tokenizer):
        """transformers' DistilBERT normalizes with eps=1e-12 everywhere (the MLM
        head's `vocab_layer_norm` too). The goldens see 1e-5 (the sensitivity
        meta-tests), but not Keras' 1e-7 fallback for `epsilon=None`, which moves
        outputs at unit variance by less than the parity tolerance."""
        backbone = tiny_backbone_for(tokenizer)
        model = MODELS[name](backbone)
        norms = {
            layer.path: layer.epsilon
            for layer in model._flatten_layers()
            if isinstance(layer, keras.layers.LayerNormalization)
        }
        assert len(norms) == 1 + 2 * backbone.num_layers + (name == "masked_lm"), sorted(norms)
        assert all(epsilon == 1e-12 for epsilon in norms.values()), norms

    def run_golden_case(self, case_id):
        golden = load_case(case_id)
        comparisons = compare_outputs(golden, run_case(golden))
        assert_all_match(comparisons)
        return comparisons

    def run_pipeline_golden_case(self, case_id):
        """A `pipeline` golden: each call's structure (labels, tokens, words,
        offsets) equal as text, so a mismatch shows as a readable diff, then
        every output within its tolerance."""
        from harness.pipeline_results import structure_text

        golden = load_case(case_id)
        actual = run_case(golden)
        for name, expected in sorted(golden.outputs.items()):
            if name.endswith("/structure"):
                assert structure_text(actual[name]) == structure_text(expected.value), f"{case_id} {name}"
        assert_all_match(compare_outputs(golden, actual))

    def run_preset_checkpoint_case(self, case_id):
        """The full-size tiers through the real loading path: the preset of a
        `preset_*` golden loads with `from_preset(name)` from the Hugging Face
        cache that `tools/make_checkpoints.py --hub-cache` fills (offline), and
        must reproduce the golden; its tokenizer must give the ids
        transformers gave when it wrote the checkpoint."""
        from distilbert_hub import DistilBertBackbone, DistilBertTokenizer

        golden = load_case(case_id)
        preset = golden.provenance["preset"]
        cache = hub_cache()
        backbone = DistilBertBackbone.from_preset(preset)
        assert_all_match(compare_outputs(golden, run_backbone_case(golden, backbone)))
        expected = json.loads((cache.parent / "expected_tokens" / f"{preset}.json").read_text())
        tokenizer = DistilBertTokenizer.from_preset(preset)
        assert tokenizer.lowercase == expected["lowercase"], f"{preset}: lowercase {tokenizer.lowercase}"
        for text, ids in zip(expected["texts"], expected["input_ids"]):
            ours = [tokenizer.cls_token_id, *tokenizer(text).tolist(), tokenizer.sep_token_id]
            assert ours == ids, f"{preset}: {text!r} gives {ours}, transformers gave {ids}"


def hub_cache():
    """The Hugging Face cache the full-size tiers read (offline), or a clear failure."""
    path = os.environ.get("HF_HUB_CACHE")
    if not path or os.environ.get("HF_HUB_OFFLINE") != "1" or not Path(path).is_dir():
        raise AssertionError(
            f"the full-size tiers read presets offline from a Hugging Face cache (HF_HUB_CACHE={path!r}, "
            f"HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE')!r}); fill it with `tox -e checkpoints` "
            "and run the tier through tox (`tox -e jax-large`), which sets both."
        )
    return Path(path)


# The policies every head layer must follow from its backbone.
HEAD_POLICIES = ["mixed_bfloat16", "float16"]


def head_case_ids(task):
    """The `head` goldens of one task (`MODELS` name), by the head their provenance names."""
    cases = read_manifest()
    return [case_id for case_id in case_ids(kind="head") if cases[case_id]["provenance"]["head"] == task]


def cross_entropy(logits, labels, weights=None):
    """transformers' classification loss, in numpy: the mean softmax cross-entropy."""
    logits = logits - logits.max(-1, keepdims=True)
    log_probabilities = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = -np.take_along_axis(log_probabilities, labels[..., None], -1)[..., 0]
    if weights is None:
        return picked.mean()
    return (picked * weights).sum() / weights.sum()  # transformers: the mean over labels that are not -100


class TaskTestCase(ModelTestCase):
    """What every task must do, in one call each (KerasHub's TestCase is the
    model). A subclass sets `task`, its `MODELS` name; each `run_*_test` is
    one check, written once here and called from each task's file."""

    task = None

    def run_task_test(self, make_task, preprocessor, x, y, tmp_path, tokenizer):
        """`make_task(backbone, preprocessor)` builds the task. Checks: config
        and `.keras` round trips keep outputs and preprocessor; shorter inputs
        run; one epoch of fit on raw strings lowers the loss (seeded, no
        dropout; the masked LM on one fixed masked batch); predict and
        evaluate on raw strings; mixed_bfloat16 gives finite outputs."""

        def backbone(**kwargs):
            return tiny_backbone_for(tokenizer, dropout=0.0, **kwargs)

        keras.utils.set_random_seed(3)
        model = make_task(backbone(), preprocessor)
        prepared = keras.utils.unpack_x_y_sample_weight(preprocessor(x, y) if y is not None else preprocessor(x))
        if "mask_positions" not in prepared[0]:  # shorter inputs would drop the chosen mask positions
            self.check_variable_sequence_length(model, prepared[0])
        loaded = self.check_round_trips(model, prepared[0], tmp_path)
        assert loaded.preprocessor.get_config() == preprocessor.get_config()

        for layer in model._flatten_layers():
            if isinstance(layer, keras.layers.Dropout):
                layer.rate = 0.0
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        weights = None
        if "mask_positions" in prepared[0]:  # masks are drawn afresh per call: train on one masked batch
            x, y, weights = prepared
        before = model.evaluate(x, y, sample_weight=weights, verbose=0, return_dict=True)["loss"]
        model.fit(x, y, sample_weight=weights, batch_size=8, epochs=1, verbose=0)
        after = model.evaluate(x, y, sample_weight=weights, verbose=0, return_dict=True)["loss"]
        assert after < before, f"{type(model).__name__}: loss {before:.4f} -> {after:.4f} after one epoch"
        assert keras.tree.flatten(model.predict(x, verbose=0))[0].shape[0] >= 2

        mixed = make_task(backbone(dtype="mixed_bfloat16"), preprocessor)
        outputs = to_numpy(mixed.predict(prepared[0], verbose=0))
        assert all(np.isfinite(o.astype(np.float32)).all() for o in keras.tree.flatten(outputs))
        return model

    def run_preprocessor_test(self, preprocessor, x, y, expected_shapes):
        """Output shapes; labels pass through; the config round trip gives the
        same outputs (a masked LM preprocessor needs its seed for that)."""
        outputs = preprocessor(x, y) if y is not None else preprocessor(x)
        features = keras.utils.unpack_x_y_sample_weight(outputs)[0]
        shapes = {k: tuple(np.shape(v)) for k, v in features.items()}
        assert shapes == expected_shapes, f"shapes {shapes} != {expected_shapes}"
        restored = type(preprocessor).from_config(preprocessor.get_config())
        assert restored.get_config() == preprocessor.get_config()
        again = restored(x, y) if y is not None else restored(x)
        if not hasattr(preprocessor, "mask_selection_rate"):
            keras.tree.map_structure(np.testing.assert_array_equal, again, outputs)
        return outputs

    def make(self, tokenizer, **backbone_overrides):
        """This task from `MODELS` on a fresh tiny backbone, and its inputs."""
        model = MODELS[self.task](tiny_backbone_for(tokenizer, **backbone_overrides))
        return model, model_inputs(self.task, tokenizer.vocabulary_size())

    def run_label_shape_test(self, labels, message, tokenizer):
        """`fit` refuses `labels` (of the wrong shape for `model_inputs`, or
        all ignored) with `message`."""
        model, x = self.make(tokenizer, dropout=0.0)
        model.compile()
        with pytest.raises(ValueError, match=message):
            model.fit(x, labels, verbose=0)

    def run_constructor_arguments_test(self, cls, arguments, tokenizer):
        """Every constructor argument, each at a value that is not its
        default, survives `get_config`/`from_config`; the head's dropout rate
        reaches a Dropout layer."""
        model = cls(tiny_backbone_for(tokenizer), **arguments)
        restored = cls.from_config(model.get_config())
        for argument, value in arguments.items():
            assert getattr(restored, argument) == value, f"{cls.__name__}.{argument}: {getattr(restored, argument)!r}"
        assert restored.get_config() == model.get_config()
        rates = {layer.rate for layer in restored._flatten_layers() if isinstance(layer, keras.layers.Dropout)}
        assert arguments["dropout"] in rates

    def run_compile_defaults_test(self, tokenizer):
        """`compile()` with no arguments reports accuracy."""
        model, x = self.make(tokenizer)
        model.compile()
        shape = keras.ops.shape(model(x))[:-1]
        result = model.evaluate(x, np.zeros(shape, "int32"), verbose=0, return_dict=True)
        assert "sparse_categorical_accuracy" in result, sorted(result)

    def run_bad_labels_test(self, bad_labels, tokenizer):
        """`bad_labels(x)`, labels out of range for the inputs `x`, are refused
        in a message that starts with the task's name."""
        model, x = self.make(tokenizer)
        model.compile()
        with pytest.raises(ValueError, match=rf"^{type(model).__name__}\b.*label \d+ at index"):
            model.evaluate(x, bad_labels(x), verbose=0)

    def run_layer_names_test(self, head_layer_names, tokenizer):
        """Users reach the head's layers by name (`get_layer(...)`, LoRA
        targets and quantization maps use them; KerasHub's names where
        KerasHub has the task), and the inputs are named as `model_inputs`."""
        model, _ = self.make(tokenizer)
        own = {
            layer.name
            for layer in model.layers
            if layer is not model.backbone and not isinstance(layer, keras.layers.InputLayer)
        }
        assert own == head_layer_names
        assert sorted(i.name for i in keras.tree.flatten(model.input)) == sorted(model_inputs(self.task, 10))

    def run_dtype_policy_test(self, policy, tokenizer):
        """Every head layer follows the backbone's dtype policy, and the
        outputs come in its compute dtype."""
        model, x = self.make(tokenizer, dtype=policy)
        for layer in model._flatten_layers(include_self=False):
            if not isinstance(layer, keras.layers.InputLayer):
                assert layer.dtype_policy.name == policy, f"{layer.path}: {layer.dtype_policy.name}"
        outputs = keras.tree.flatten(model(x))
        compute = keras.dtype_policies.get(policy).compute_dtype
        assert {keras.backend.standardize_dtype(o.dtype) for o in outputs} == {compute}

    def run_fresh_weights_test(self, tokenizer):
        """`DistilBertPreTrainedModel._init_weights`: Linear and Embedding weights
        N(0, initializer_range=0.02), the heads' included (KerasHub's heads too),
        biases zero, LayerNorm gains one. Keras truncates at 2 std, which leaves
        a standard deviation of 0.0176."""
        keras.utils.set_random_seed(0)
        model, _ = self.make(tokenizer, hidden_dim=32, intermediate_dim=64)
        wrong, leaves = [], set()
        for variable in model.weights:
            value = keras.ops.convert_to_numpy(variable)
            leaf = variable.path.rsplit("/", 1)[-1]
            leaves.add(leaf)
            drawn = leaf in ("kernel", "token_embedding", "position_embedding")
            if drawn and np.abs(value).max() > 0.04:
                wrong.append(f"{variable.path}: |value| up to {np.abs(value).max():.3f}, beyond 2 std")
            elif drawn and value.size >= 256 and not 0.014 < value.std() < 0.021:
                wrong.append(f"{variable.path}: std {value.std():.4f}")
            elif leaf in ("bias", "beta", "vocab_bias") and np.any(value != 0):
                wrong.append(f"{variable.path}: not zeros")
            elif leaf == "gamma" and np.any(value != 1):
                wrong.append(f"{variable.path}: not ones")
        assert {"kernel", "token_embedding", "position_embedding", "gamma"} <= leaves, sorted(leaves)
        assert not wrong, "\n".join(wrong)

    def run_default_loss_test(self, tokenizer, labels_for=None):
        """The default loss is transformers' loss on the same logits and
        labels: mean softmax cross-entropy (the question answerer averages its
        start and end losses). `labels_for(outputs, rng)` draws the labels;
        by default one class per row of logits."""
        keras.utils.set_random_seed(0)
        model, x = self.make(tokenizer, dropout=0.0)
        model.compile()
        outputs = keras.tree.map_structure(keras.ops.convert_to_numpy, model(x))
        rng = np.random.default_rng(1)
        if labels_for is None:
            y = rng.integers(0, outputs.shape[-1], outputs.shape[:-1])
        else:
            y = labels_for(outputs, rng)
        if isinstance(outputs, dict):
            expected = np.mean([cross_entropy(outputs[key].astype(np.float64), y[key]) for key in y])
        else:
            expected = cross_entropy(outputs.astype(np.float64), y)
        loss = model.evaluate(x, y, verbose=0, return_dict=True)["loss"]
        np.testing.assert_allclose(loss, expected, rtol=1e-5)

    def run_head_dropout_field_test(self, cls, field):
        """The head's dropout comes from the HF config field transformers reads
        for it (modeling_distilbert: the sequence and multiple-choice heads
        seq_classif_dropout, question answering qa_dropout, token
        classification dropout)."""
        config = {"dropout": 0.1, "seq_classif_dropout": 0.2, "qa_dropout": 0.3, "id2label": {"0": "A", "1": "B"}}
        assert head_kwargs_from_hf_config(cls, config)["dropout"] == config[field]
        # A config.json without the field (older writers) keeps the head's default.
        assert "dropout" not in head_kwargs_from_hf_config(cls, {k: v for k, v in config.items() if k != field})


def draw_head_at_glorot_scale(task):
    """Redraws the head's kernels at Keras' glorot scale. The tiny backbone
    (8 wide, N(0, 0.02) as transformers initializes) gives nearly the same
    [CLS] state for every text, and a head drawn at 0.02 as well passes that
    difference on too faintly for a few LoRA steps to move the loss."""
    initializer = keras.initializers.GlorotUniform(seed=0)
    for layer in task._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Dense) and not layer.path.startswith(task.backbone.name):
            layer.kernel.assign(initializer(layer.kernel.shape))


def outputs_as_dict(y):
    y = y if isinstance(y, dict) else {"output": y}
    return {k: keras.ops.convert_to_numpy(v) for k, v in y.items()}


RELOAD_SCRIPT = """
import json, sys
import keras, numpy as np
import distilbert_hub  # registers the classes
for archive, inputs, output in json.loads(sys.argv[1]):
    model = keras.saving.load_model(archive)
    y = model(dict(np.load(inputs)))
    y = y if isinstance(y, dict) else {"output": y}
    np.savez(output, **{k: keras.ops.convert_to_numpy(v) for k, v in y.items()})
"""


def run_in_fresh_process(script, *args):
    """`python -c script args` with this checkout's library; fails with its stderr."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def assert_reloads_in_a_fresh_process(models, tmp_path):
    """Save each `(label, model, inputs)` as `.keras`, load them all in one
    fresh process and require the same outputs."""
    cases, expected = [], {}
    for label, model, x in models:
        stem = tmp_path / label
        expected[f"{stem}_outputs.npz"] = outputs_as_dict(model(x))
        model.save(f"{stem}.keras")
        np.savez(f"{stem}_inputs.npz", **x)
        cases.append((f"{stem}.keras", f"{stem}_inputs.npz", f"{stem}_outputs.npz"))
    run_in_fresh_process(RELOAD_SCRIPT, json.dumps(cases))
    # On CPU the same kernels run in both processes. A GPU's autotuner may
    # pick other kernels in the new process: measured on an H200 (jax), 3.2e-6
    # in float32 and 4.2e-5 on int8 models; a lost or misplaced weight moves
    # outputs by orders more.
    atol = 1e-6 if accelerator() == "cpu" else 1e-4
    for output, values in expected.items():
        reloaded = np.load(output)
        for key, value in values.items():
            np.testing.assert_allclose(reloaded[key], value, atol=atol, err_msg=f"{output} '{key}' after reload")
