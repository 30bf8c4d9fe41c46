"""Dropout sites of a training forward, checked against where transformers has them.

Dropout in training is where transformers has it, at its rate, scaled by
1/(1-p): after the embeddings' LayerNorm, on the attention probabilities,
on the feed-forward output before the residual sum, and in each head before
its last Dense (at the head's own rate). One training forward is recorded
(every Dropout and LayerNorm call, inputs and outputs) with every rate
different, so a site removed, moved, swapped, unscaled or applied after the
residual sum fails."""

import keras
import numpy as np

import distilbert_hub as hub

HIDDEN, ATTENTION, HEAD = 0.2, 0.35, 0.5  # distinct: a site with another's rate fails
BATCH, LENGTH, WIDTH, LAYERS = 8, 16, 32, 2


def backbone():
    return hub.DistilBertBackbone(
        vocabulary_size=60,
        num_layers=LAYERS,
        num_heads=4,
        hidden_dim=WIDTH,
        intermediate_dim=64,
        max_sequence_length=LENGTH,
        dropout=HIDDEN,
        attention_dropout=ATTENTION,
    )


TASKS = {
    "backbone": lambda: backbone(),
    "text_classifier": lambda: hub.DistilBertTextClassifier(backbone(), num_classes=3, dropout=HEAD),
    "token_classifier": lambda: hub.DistilBertTokenClassifier(backbone(), num_classes=3, dropout=HEAD),
    "question_answerer": lambda: hub.DistilBertQuestionAnswerer(backbone(), dropout=HEAD),
    "multiple_choice": lambda: hub.DistilBertMultipleChoice(backbone(), dropout=HEAD),
}


def record_training_call(monkeypatch, model, x):
    """[(layer, kind, input, output)] of every Dropout and LayerNorm call, in order."""
    calls = []
    for cls, kind in ((keras.layers.Dropout, "dropout"), (keras.layers.LayerNormalization, "layer_norm")):

        def recording(self, inputs, *args, _call=cls.call, _kind=kind, **kwargs):
            outputs = _call(self, inputs, *args, **kwargs)
            calls.append((self, _kind, keras.ops.convert_to_numpy(inputs), keras.ops.convert_to_numpy(outputs)))
            return outputs

        monkeypatch.setattr(cls, "call", recording)
    model(x, training=True)
    return calls


def inputs_for(name):
    rng = np.random.default_rng(0)
    shape = (BATCH // 2, 2, LENGTH) if name == "multiple_choice" else (BATCH, LENGTH)
    mask = np.ones(shape, "int32")
    mask[..., LENGTH - 5 :] = 0
    mask[0, ..., 1:] = 0  # a one-token row
    return {"token_ids": rng.integers(1, 60, shape).astype("int32"), "padding_mask": mask}


def check_scaled_dropout(path, rate, before, after):
    """Kept values are before / (1 - rate); the dropped fraction is `rate`."""
    nonzero = before != 0
    kept = nonzero & (after != 0)
    np.testing.assert_allclose(after[kept], before[kept] / (1 - rate), rtol=1e-5, err_msg=f"{path}: kept values")
    dropped = 1 - kept.sum() / nonzero.sum()
    spread = 5 * np.sqrt(rate * (1 - rate) / nonzero.sum())  # 5 binomial standard deviations
    assert abs(dropped - rate) < spread, f"{path}: dropped {dropped:.3f} of {nonzero.sum()} values, rate {rate}"


def check_dropout_sites(monkeypatch, name):
    """Record one training forward of TASKS[name] and check every dropout site."""
    keras.utils.set_random_seed(0)
    model = TASKS[name]()
    net = model if name == "backbone" else model.backbone
    calls = record_training_call(monkeypatch, model, inputs_for(name))
    dropouts = [(layer, before, after) for layer, kind, before, after in calls if kind == "dropout"]
    norms = {layer.path: (before, after) for layer, kind, before, after in calls if kind == "layer_norm"}

    # The sites, in order, with their rates: transformers' DistilBERT has exactly these.
    expected = [(net.embeddings.dropout_layer, HIDDEN)]
    for block in net.transformer_layers:
        expected += [(block.attention.dropout_layer, ATTENTION), (block.output_dropout, HIDDEN)]
    if name != "backbone":
        expected.append((model.output_dropout, HEAD))
    sites, wanted = (
        [(layer.path, layer.rate) for layer, _, _ in dropouts],
        [(site.path, rate) for site, rate in expected],
    )
    assert sites == wanted, f"dropout sites (path, rate) {sites}, transformers has {wanted}"
    for layer, before, after in dropouts:
        check_scaled_dropout(layer.path, layer.rate, before, after)

    # Where each one sits: its input is what transformers drops, its output feeds what transformers feeds.
    (_, embedded, _), *rest = dropouts
    np.testing.assert_array_equal(embedded, norms[net.embeddings.layer_norm.path][1], "embeddings: after LayerNorm")
    for block, (_, probabilities, _), (_, feed_forward, dropped) in zip(net.transformer_layers, rest[::2], rest[1::2]):
        real = probabilities.sum(-1)  # softmax rows over the keys (a fully padded row of queries too)
        np.testing.assert_allclose(
            real, 1.0, atol=1e-5, err_msg=f"{block.path}: attention dropout not on the probabilities"
        )
        attended = norms[block.attention_layer_norm.path][1]
        summed = norms[block.output_layer_norm.path][0]
        np.testing.assert_allclose(
            summed, dropped + attended, atol=1e-5, err_msg=f"{block.path}: FFN dropout not before the residual sum"
        )
        assert not np.allclose(feed_forward, summed), f"{block.path}: FFN dropout after the residual sum"
    if name != "backbone":
        hidden = norms[net.transformer_layers[-1].output_layer_norm.path][1]
        head_input = dropouts[-1][1]
        if name in ("text_classifier", "multiple_choice"):  # pre_classifier + ReLU on the first token
            hidden = keras.ops.convert_to_numpy(model.pooled_dense(hidden[:, 0]))
        np.testing.assert_allclose(head_input, hidden, atol=1e-5, err_msg=f"{name}: head dropout input")
