"""Run a golden case through this library on the current Keras backend.

Models are loaded from the golden's Hugging Face config and weights by the
loader `from_preset` uses for a Hugging Face checkpoint
(`convert.loaders.HuggingFaceLoader`), head table and name mapping included.
"""

import hashlib

import keras
import numpy as np

import distilbert_hub as hub
from distilbert_hub.convert.hf_config import backbone_kwargs_from_hf_config, head_kwargs_from_hf_config
from distilbert_hub.convert.hf_heads import TASK_NAMES, TIED_WEIGHTS
from distilbert_hub.convert.hf_weights import assign_hf_weights, backbone_weight_map, head_weight_entries
from distilbert_hub.convert.loaders import HuggingFaceLoader
from distilbert_hub.distilbert_backbone import DistilBertBackbone
from distilbert_hub.distilbert_tokenizer import DistilBertTokenizer
from harness.compare import compare
from harness.devices import current_profile
from harness.golden import REPO_ROOT, GoldenError, pad_rows
from harness.gradients import run_gradients_case
from harness.seeded_weights import seeded_weights, weights_digest


def golden_weights(golden, entries):
    """The golden's weights: stored ones, or (full-size cases) regenerated from
    the recorded seed and checked against the recorded digest."""
    if golden.weights:
        return golden.weights
    seed, digest = golden.provenance.get("weights_seed"), golden.provenance.get("weights_sha256")
    if seed is None or digest is None:
        raise GoldenError(f"case '{golden.case_id}': no weights and no weights_seed/weights_sha256.")
    weights = seeded_weights({e.hf_name: e.hf_shape for e in entries}, seed)
    if weights_digest(weights) != digest:
        raise GoldenError(
            f"case '{golden.case_id}': weights regenerated from seed {seed} have digest "
            f"{weights_digest(weights)}, the golden recorded {digest}."
        )
    return weights


def backbone_from_golden(golden, backbone_cls=DistilBertBackbone, dtype=None):
    kwargs = backbone_kwargs_from_hf_config(golden.config, source=golden.case_id)
    backbone = backbone_cls(**kwargs, dtype=dtype)
    entries = backbone_weight_map(backbone)
    assign_hf_weights(entries, golden_weights(golden, entries), source=golden.case_id)
    return backbone


def model_inputs(golden):
    return {
        "token_ids": golden.inputs["token_ids"],
        "padding_mask": golden.inputs["padding_mask"],
    }


def run_backbone_case(golden, backbone=None):
    backbone = backbone or backbone_from_golden(golden)
    hidden_states = backbone.hidden_states_model()(model_inputs(golden), training=False)
    return {f"hidden_states/{i:02d}": keras.ops.convert_to_numpy(state) for i, state in enumerate(hidden_states)}


TOKENIZER_OPTIONS = ("lowercase", "strip_accents", "tokenize_chinese_chars", "special_tokens_in_strings")


def tokenizer_from_golden(golden, overrides=None):
    """The golden's tokenizer; `overrides` change options (the sensitivity meta-tests)."""
    path = REPO_ROOT / golden.config["vocabulary"]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != golden.config["vocabulary_sha256"]:
        raise GoldenError(f"case '{golden.case_id}': {path} is not the vocabulary the golden was made with.")
    options = {k: golden.config[k] for k in TOKENIZER_OPTIONS} | (overrides or {})
    return DistilBertTokenizer(vocabulary=path, **options)


def run_tokenizer_case(golden, overrides=None):
    tokenizer = tokenizer_from_golden(golden, overrides)
    encoded = tokenizer.tokenize_with_offsets(golden.inputs["texts"])
    width = golden.outputs["token_ids"].value.shape[1]
    ids = [row_ids for row_ids, _ in encoded]
    return {
        "token_ids": pad_rows(ids, -1, width),
        "token_mask": pad_rows([np.ones(len(r), np.int32) for r in ids], 0, width),
        "offsets": pad_rows([offsets for _, offsets in encoded], -1, width, tail=(2,)),
    }


def run_preprocessor_case(golden, overrides=None):
    """The golden's preprocessor on its inputs; `overrides` change its options."""
    import distilbert_hub as hub

    tokenizer = tokenizer_from_golden(golden)
    options = {k: golden.config[k] for k in ("sequence_length", "truncate", "stride") if k in golden.config}
    options |= overrides or {}
    kind, inputs = golden.provenance["preprocessor"], golden.inputs
    if kind == "text_classifier":
        x = (inputs["first"], inputs["second"]) if "second" in inputs else inputs["first"]
        return hub.DistilBertTextClassifierPreprocessor(tokenizer, **options)(x)
    if kind == "token_classifier":
        words = [inputs[f"words_{i}"] for i in range(len(inputs["word_labels"]))]
        word_labels = [row[row >= 0] for row in inputs["word_labels"]]
        x, labels, weights = hub.DistilBertTokenClassifierPreprocessor(tokenizer, **options)(words, word_labels)
        return x | {"labels": np.where(weights > 0, labels, -100)}
    windows = hub.DistilBertQuestionAnswererPreprocessor(tokenizer, **options).windows(
        inputs["questions"], inputs["contexts"]
    )
    return {
        "token_ids": windows.token_ids,
        "padding_mask": windows.padding_mask,
        "example_index": windows.example_index,
        "offsets": windows.offsets,
    }


def task_class(golden):
    """The task class that equals the golden's `transformers` class."""
    return getattr(hub, TASK_NAMES[golden.provenance["hf_class"]])


def task_from_golden(golden, dtype=None):
    """The task model of a head golden, loaded from its config and weights as
    `from_preset` loads a Hugging Face checkpoint of its `transformers` class."""
    architecture = golden.provenance["hf_class"]
    loader = HuggingFaceLoader.from_state(golden.config, golden.weights, golden.case_id, architecture)
    options = {"dtype": dtype} if dtype is not None else {}
    return loader.load_task(task_class(golden), preprocessor=None, **options)


def run_head_case(golden, task=None):
    """The task's outputs through the reference layers (`predict`'s
    inference strategies run them in harness/inference_runs.py)."""
    task = task or task_from_golden(golden)
    outputs = task(dict(golden.inputs), training=False)
    if not isinstance(outputs, dict):
        outputs = {"logits": outputs}
    return {name: keras.ops.convert_to_numpy(value) for name, value in outputs.items()}


PIPELINE_METHODS = {
    "text-classification": "classify",
    "fill-mask": "fill_mask",
    "token-classification": "entities",
}


def pipeline_checkpoint(golden, directory):
    """The golden's model written as a Hugging Face checkpoint directory
    (config, safetensors weights, the vocabulary it names), for `from_preset`."""
    import json
    import shutil

    from distilbert_hub.convert.hf_checkpoint import write_json, write_safetensors

    config = dict(golden.config)
    vocabulary = config.pop("pipeline_vocabulary")
    path = REPO_ROOT / vocabulary["vocabulary"]
    if hashlib.sha256(path.read_bytes()).hexdigest() != vocabulary["vocabulary_sha256"]:
        raise GoldenError(f"case '{golden.case_id}': {path} is not the vocabulary the golden was made with.")
    write_json(directory / "config.json", config)
    write_safetensors(directory / "model.safetensors", golden.weights)
    shutil.copy(path, directory / "vocab.txt")
    (directory / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": vocabulary["lowercase"]}))
    return directory


def run_pipeline_case(golden, task=None):
    """Each recorded pipeline call through the task's method (`classify`,
    `fill_mask`, `entities`) on the model `from_preset` loads from the
    golden's checkpoint; results split as the generator split them.
    `feature-extraction` goldens: `embedder_outputs`."""
    import json
    import tempfile
    from pathlib import Path

    from harness.pipeline_results import split_scores

    with tempfile.TemporaryDirectory() as directory:
        if golden.provenance["pipeline"] == "feature-extraction":
            return embedder_outputs(golden, Path(directory))
        if task is None:
            task = task_class(golden).from_preset(str(pipeline_checkpoint(golden, Path(directory))))
        method = getattr(task, PIPELINE_METHODS[golden.provenance["pipeline"]])
        outputs = {}
        for number, call in enumerate(json.loads(golden.inputs["calls"][0])):
            structure, scores = split_scores(method(call["inputs"], **call["kwargs"]))
            outputs[f"call_{number:02d}/structure"] = structure
            outputs[f"call_{number:02d}/scores"] = scores
    return outputs


def embedder_outputs(golden, directory):
    """Each recorded call's texts through `DistilBertTextEmbedder.predict`,
    the embedder `from_preset` loads with the call's pooling and
    normalization."""
    import json

    from distilbert_hub import DistilBertTextEmbedder

    path = str(pipeline_checkpoint(golden, directory))
    outputs = {}
    for number, call in enumerate(json.loads(golden.inputs["calls"][0])):
        embedder = DistilBertTextEmbedder.from_preset(path, **call["kwargs"])
        outputs[f"call_{number:02d}/embeddings"] = np.asarray(embedder.predict(call["inputs"], verbose=0))
    return outputs


def training_recipe(golden):
    """`trainer_optimizer` arguments from a training golden's provenance."""
    p = golden.provenance
    names = ("total_steps", "learning_rate", "warmup_steps", "weight_decay", "max_grad_norm")
    return {n: p[f"recipe_{n}"] for n in names} | {
        "beta_1": p["recipe_beta_1"],
        "beta_2": p["recipe_beta_2"],
        "epsilon": p["recipe_epsilon"],
    }


def full_size_training_task(golden, backbone=None):
    """The full-size training case's classifier: `backbone` (default: built
    from the golden's config with its seeded weights, digest checked) and the
    head drawn from its recorded seed (digest checked)."""
    if backbone is None:
        backbone = DistilBertBackbone(**backbone_kwargs_from_hf_config(golden.config, source=golden.case_id))
        entries = backbone_weight_map(backbone)
        assign_hf_weights(entries, golden_weights(golden, entries), source=golden.case_id)
    cls = task_class(golden)
    # `to_diff_dict` leaves out transformers' default of 2 labels.
    task = cls(backbone, **head_kwargs_from_hf_config(cls, {"num_labels": 2} | golden.config))
    head = head_weight_entries(task)
    weights = seeded_weights({e.hf_name: e.hf_shape for e in head}, golden.provenance["head_weights_seed"])
    if weights_digest(weights) != golden.provenance["head_weights_sha256"]:
        raise GoldenError(f"case '{golden.case_id}': the head regenerated from its seed has another digest.")
    assign_hf_weights(head, weights, source=golden.case_id)
    return task


def run_training_case(golden, task=None, dtype=None, optimizer=None):
    """The golden's N steps through `compile(optimizer=trainer_optimizer(...))`
    and `train_on_batch`, one fixed batch per step: each step's loss and
    learning rate, and (tiny cases) every parameter afterwards in HF names."""
    from distilbert_hub.convert.hf_weights import export_hf_weights, task_weight_map
    from distilbert_hub.training import trainer_optimizer

    if task is None:
        task = task_from_golden(golden, dtype=dtype) if golden.weights else full_size_training_task(golden)
    optimizer = optimizer or trainer_optimizer(**training_recipe(golden))
    task.compile(optimizer=optimizer)
    inputs, losses, rates = golden.inputs, [], []
    for step in range(golden.provenance["recipe_steps"]):
        labels = inputs["labels"][step]
        x = {"token_ids": inputs["token_ids"][step], "padding_mask": inputs["padding_mask"][step]}
        weights = (labels != -100).astype("float32") if labels.ndim == 2 else None
        rates.append(float(keras.ops.convert_to_numpy(task.optimizer.learning_rate)))
        logs = task.train_on_batch(x, np.maximum(labels, 0), sample_weight=weights, return_dict=True)
        losses.append(float(logs["loss"]))
    outputs = {"losses": np.array(losses, np.float32), "learning_rates": np.array(rates, np.float32)}
    if any(name.startswith("weights/") for name in golden.outputs):
        final = export_hf_weights(task_weight_map(task))
        outputs |= {f"weights/{name}": value for name, value in final.items()}
        for tied, original in TIED_WEIGHTS.items():
            if original in final:
                outputs[f"weights/{tied}"] = final[original]
    return outputs


RUNNERS = {
    "backbone": run_backbone_case,
    "gradients": run_gradients_case,
    "training": run_training_case,
    "tokenizer": run_tokenizer_case,
    "head": run_head_case,
    "preprocessor": run_preprocessor_case,
    "pipeline": run_pipeline_case,
}


def run_case(golden):
    if golden.kind not in RUNNERS:
        raise ValueError(f"case '{golden.case_id}': no runner for kind '{golden.kind}'.")
    return RUNNERS[golden.kind](golden)


def compare_outputs(golden, actual_outputs, backend=None, profile=None):
    """One `Comparison` per golden output; an output the run lacks is a failure.

    `profile` (default: the current device's) may raise float tolerances for
    an accelerator, with its reason; on CPU the golden's tolerance stands.
    """
    backend = backend or keras.backend.backend()
    profile = profile or current_profile()
    comparisons = []
    for name, expected in sorted(golden.outputs.items()):
        mask = None
        if expected.real_token_mask in golden.inputs:
            mask = golden.inputs[expected.real_token_mask]
        elif expected.real_token_mask:
            mask = golden.outputs[expected.real_token_mask].value
        atol, reason = expected.atol, expected.tolerance_reason
        is_float = np.issubdtype(expected.value.dtype, np.floating)
        if is_float and profile.atol_floor > atol:
            atol, reason = profile.atol_floor, f"{profile.device} profile: {profile.reason}"
        actual = actual_outputs.get(name)
        comparison = compare(
            actual if actual is not None else np.empty((0,)),
            expected.value,
            atol=atol,
            rtol=expected.rtol,
            tolerance_reason=reason,
            case_id=golden.case_id,
            output=name,
            backend=backend if profile.device == "cpu" else f"{backend}-{profile.device}",
            real_token_mask=mask,
            tier=golden.provenance.get("tier", "default"),
            relative_to_norm=golden.kind == "gradients" and name.startswith("gradients/"),
        )
        if actual is None:
            comparison.problem = "the model produced no such output"
        comparisons.append(comparison)
    return comparisons
