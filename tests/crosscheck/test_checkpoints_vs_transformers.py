"""Checkpoints both ways against live transformers: checkpoints that
`save_pretrained` writes (bare and prefixed, single-file, sharded, bf16,
pytorch_model.bin, every DistilBertFor* head) load through `from_preset` and
compute what transformers computes; `export_to_transformers` writes what
`AutoModel*`/`AutoTokenizer.from_pretrained` load and reproduce."""

import shutil

import keras
import numpy as np
import pytest
import torch
import transformers
from transformers import DistilBertConfig

import distilbert_hub as hub
from distilbert_hub.convert.hf_weights import backbone_weight_map, task_weight_map
from harness.seeded_weights import seeded_weights
from tools.golden_cases.reference import padded_token_ids

VOCABULARY = "harness/fixtures/bert_base_uncased_vocab.txt"
CONFIG = dict(vocab_size=30522, dim=32, n_layers=2, n_heads=4, hidden_dim=48, max_position_embeddings=24)
TASKS = {
    "DistilBertModel": (hub.DistilBertBackbone, {}),
    "DistilBertForSequenceClassification": (hub.DistilBertTextClassifier, dict(num_labels=3)),
    "DistilBertForMaskedLM": (hub.DistilBertMaskedLM, {}),
    "DistilBertForTokenClassification": (hub.DistilBertTokenClassifier, dict(num_labels=5)),
    "DistilBertForQuestionAnswering": (hub.DistilBertQuestionAnswerer, {}),
    "DistilBertForMultipleChoice": (hub.DistilBertMultipleChoice, {}),
}
TEXTS = ["Hello World, Café", "The quick brown fox jumps over the lazy dog.", "naïve résumé 東京 [MASK] ok"]


def seeded_reference(architecture, seed=0):
    config = DistilBertConfig(attn_implementation="eager", **CONFIG, **TASKS[architecture][1])
    model = getattr(transformers, architecture)(config).eval()
    shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    weights = seeded_weights(shapes, seed, keep=("vocab_projector.weight",))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=False)
    return model


def reference_tokenizer(lowercase):
    from transformers.models.bert.tokenization_bert import load_vocab

    return transformers.DistilBertTokenizer(vocab=load_vocab(VOCABULARY), do_lower_case=lowercase)


def model_inputs(architecture):
    rng = np.random.default_rng(1)
    if architecture == "DistilBertForMultipleChoice":
        ids, mask = padded_token_ids(rng, CONFIG["vocab_size"], [9, 4, 7, 9, 2, 6], 9)
        return {"token_ids": ids.reshape(2, 3, 9), "padding_mask": mask.reshape(2, 3, 9)}
    ids, mask = padded_token_ids(rng, CONFIG["vocab_size"], [10, 6, 1], 10)
    inputs = {"token_ids": ids, "padding_mask": mask}
    if architecture == "DistilBertForMaskedLM":
        inputs["mask_positions"] = np.array([[1, 4, 9], [0, 2, 5], [0, 0, 0]], np.int32)
    return inputs


def reference_outputs(model, inputs):
    with torch.no_grad():
        result = model(
            input_ids=torch.from_numpy(inputs["token_ids"]).long(),
            attention_mask=torch.from_numpy(inputs["padding_mask"]).long(),
        )
    if isinstance(model, transformers.DistilBertModel):
        return {"output": result.last_hidden_state.numpy()}
    if isinstance(model, transformers.DistilBertForQuestionAnswering):
        return {"start_logits": result.start_logits.numpy(), "end_logits": result.end_logits.numpy()}
    logits = result.logits.numpy()
    if "mask_positions" in inputs:
        logits = np.take_along_axis(logits, inputs["mask_positions"][:, :, None], axis=1)
    return {"output": logits}


def our_outputs(model, inputs):
    outputs = model(inputs, training=False)
    outputs = outputs if isinstance(outputs, dict) else {"output": outputs}
    return {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}


def assert_close(actual, expected, mask, atol, what):
    for name in expected:
        a, e = actual[name], expected[name]
        assert a.shape == e.shape, f"{what} {name}: shape {a.shape} != {e.shape}"
        error = np.abs(a.astype(np.float64) - e)
        if mask is not None and error.ndim >= 2 and error.shape[:2] == mask.shape:
            error = error * mask.reshape(mask.shape + (1,) * (error.ndim - 2))
        worst = np.unravel_index(np.argmax(error), error.shape)
        assert error.max() <= atol, (
            f"{what} {name}: max abs error {error.max():.3e} > {atol:g} at {tuple(map(int, worst))}: "
            f"ours {a[worst]:.6f}, transformers {e[worst]:.6f}"
        )


def real_token_mask(architecture, inputs):
    return (
        None
        if architecture
        in ("DistilBertForMaskedLM", "DistilBertForMultipleChoice", "DistilBertForSequenceClassification")
        else inputs["padding_mask"]
    )


SAVE_VARIANTS = {
    "safetensors": dict(),
    "sharded": dict(max_shard_size="300KB"),
    "pytorch_bin": dict(),  # transformers 5 writes safetensors only: the .bin is written below
}


@pytest.mark.parametrize("variant", sorted(SAVE_VARIANTS))
@pytest.mark.parametrize("architecture", sorted(TASKS))
def test_a_transformers_checkpoint_loads_and_round_trips(tmp_path, architecture, variant):
    reference = seeded_reference(architecture)
    reference.save_pretrained(tmp_path / "hf", **SAVE_VARIANTS[variant])
    reference_tokenizer(lowercase=True).save_pretrained(tmp_path / "hf")
    if variant == "sharded":
        assert (tmp_path / "hf" / "model.safetensors.index.json").is_file()
    if variant == "pytorch_bin":
        (tmp_path / "hf" / "model.safetensors").unlink()
        torch.save(reference.state_dict(), tmp_path / "hf" / "pytorch_model.bin")

    cls = TASKS[architecture][0]
    ours = cls.from_preset(str(tmp_path / "hf"))
    inputs = model_inputs(architecture)
    expected = reference_outputs(reference, inputs)
    mask = real_token_mask(architecture, inputs)
    assert_close(our_outputs(ours, inputs), expected, mask, 1e-5, f"{architecture}/{variant} loaded")

    # ours -> HF: transformers loads the export and computes the same.
    ours.export_to_transformers(tmp_path / "export")
    auto = (
        transformers.AutoModel
        if architecture == "DistilBertModel"
        else getattr(transformers, architecture.replace("DistilBert", "AutoModel"))
    )
    reloaded = auto.from_pretrained(tmp_path / "export", attn_implementation="eager").eval()
    assert type(reloaded).__name__ == architecture
    assert_close(reference_outputs(reloaded, inputs), expected, mask, 1e-5, f"{architecture}/{variant} exported")

    # ours -> preset -> ours.
    ours.save_to_preset(tmp_path / "preset")
    again = cls.from_preset(str(tmp_path / "preset"))
    assert_close(our_outputs(again, inputs), our_outputs(ours, inputs), None, 1e-6, f"{architecture} preset")
    if architecture != "DistilBertModel":
        tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "export")
        assert [tokenizer(t)["input_ids"] for t in TEXTS] == [
            [101, *ours.preprocessor.tokenizer(t).tolist(), 102] for t in TEXTS
        ]


def test_a_bf16_checkpoint_loads_its_weights_exactly(tmp_path):
    reference = seeded_reference("DistilBertForMaskedLM").to(torch.bfloat16)
    reference.save_pretrained(tmp_path / "hf")
    ours = hub.DistilBertMaskedLM.from_preset(str(tmp_path / "hf"), preprocessor=None)
    state = {k: v.float().numpy() for k, v in reference.state_dict().items() if k != "vocab_projector.weight"}
    for entry in task_weight_map(ours):
        value = keras.ops.convert_to_numpy(entry.variable)
        np.testing.assert_array_equal(
            value.T if entry.transpose else value, state[entry.hf_name], err_msg=entry.hf_name
        )


@pytest.mark.parametrize("lowercase", [True, False])
@pytest.mark.parametrize("files", ["tokenizer.json", "vocab.txt"])
def test_a_tokenizer_from_checkpoint_files_gives_transformers_ids(tmp_path, lowercase, files):
    reference_tokenizer(lowercase).save_pretrained(tmp_path / "hf")
    if files == "tokenizer.json":
        (tmp_path / "hf" / "tokenizer_config.json").unlink()
    else:
        (tmp_path / "hf" / "tokenizer.json").unlink()
        shutil.copy(VOCABULARY, tmp_path / "hf" / "vocab.txt")
    reference = (
        transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
        if files == "tokenizer.json"
        else (reference_tokenizer(lowercase))
    )
    ours = hub.DistilBertTokenizer.from_preset(str(tmp_path / "hf"))
    assert ours.lowercase == lowercase
    for text in TEXTS:
        assert ours(text).tolist() == reference(text, add_special_tokens=False)["input_ids"], text


def test_a_backbone_from_a_task_checkpoint_takes_the_prefixed_weights(tmp_path):
    reference = seeded_reference("DistilBertForSequenceClassification")
    reference.save_pretrained(tmp_path / "hf")
    backbone = hub.DistilBertBackbone.from_preset(str(tmp_path / "hf"))
    state = reference.state_dict()
    for entry in backbone_weight_map(backbone):
        value = keras.ops.convert_to_numpy(entry.variable)
        np.testing.assert_array_equal(
            value.T if entry.transpose else value, state[f"distilbert.{entry.hf_name}"].numpy(), err_msg=entry.hf_name
        )


def test_a_task_from_a_bare_backbone_checkpoint_gets_a_fresh_head_and_says_so(tmp_path):
    seeded_reference("DistilBertModel").save_pretrained(tmp_path / "hf")
    with pytest.warns(UserWarning, match="head is freshly initialized") as caught:
        hub.DistilBertTextClassifier.from_preset(str(tmp_path / "hf"), num_classes=2, preprocessor=None)
    assert len(caught) == 1


@pytest.mark.parametrize("name", ["backbone", "head_masked_lm", "head_multiple_choice", "head_question_answerer"])
def test_the_converter_cli_verifies_against_transformers(tmp_path, name):
    import subprocess
    import sys

    source = f"harness/fixtures/checkpoints/{name}"
    run = subprocess.run(
        [sys.executable, "-m", "distilbert_hub.convert", source, tmp_path / "preset", "--verify"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "max abs error on real tokens" in run.stdout and "verified" in run.stdout
