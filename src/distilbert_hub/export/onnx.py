"""ONNX export built from the weights, with the maths of transformers' DistilBERT.

The graph is written node by node with `onnx.helper` from the variables'
values (read with `keras.ops.convert_to_numpy`), so it works on whichever
Keras backend is installed and needs neither torch nor a backend exporter
(Keras' own `export(format="onnx")` fails on each backend, README "ONNX").

The inputs and outputs are those of optimum's DistilBERT export: `input_ids`
and `attention_mask`, int64 `[batch_size, sequence_length]` (`[batch_size,
num_choices, sequence_length]` for multiple choice), and the outputs named as
transformers names them (`last_hidden_state`, `logits`, `start_logits` and
`end_logits`). Every axis but the hidden ones is dynamic: one export runs at
any batch and any length up to the position table.

The maths follows `modeling_distilbert.py`: word + sliced position
embeddings, LayerNorm (eps 1e-12), queries scaled by 1/sqrt(head_dim),
padding keys set to float32's lowest value before the softmax, exact erf GELU
or ReLU, and the heads of the `DistilBertFor*` classes (the masked LM's
projection is the tied word embedding, stored once).
"""

import logging
import os
import tempfile
from pathlib import Path

import keras
import numpy as np

# LayerNormalization is an ONNX operator from opset 17 on; ORT fuses the erf
# GELU pattern below into its Gelu kernel at this opset too.
ONNX_OPSET = 17
# IR version 8 is what opset 17 came with: ONNX Runtime 1.14 and later load it.
ONNX_IR_VERSION = 8
LAYER_NORM_EPSILON = 1e-12
PROTOBUF_LIMIT_BYTES = 2**31 - 1
TEXT_CLASSIFIER_ACTIVATIONS = (None, "linear", "softmax", "sigmoid")


def import_onnx():
    try:
        import onnx
    except ImportError as error:
        raise ImportError(
            "export(format='onnx') needs the onnx package: pip install 'distilbert-hub[onnx]'."
        ) from error
    return onnx


class GraphBuilder:
    """Nodes and initializers of one ONNX graph, each output named uniquely."""

    def __init__(self, onnx, untie_projector=False):
        self.onnx = onnx
        self.untie_projector = untie_projector
        self.helper = onnx.helper
        self.nodes, self.initializers, self.names = [], [], set()

    def unique(self, name):
        candidate, n = name, 1
        while candidate in self.names:
            candidate, n = f"{name}_{n}", n + 1
        self.names.add(candidate)
        return candidate

    def constant(self, name, value, dtype=np.float32):
        name = self.unique(name)
        array = np.array(value, dtype=dtype, order="C")  # ascontiguousarray would make a scalar 1-D
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def weight(self, name, variable):
        return self.constant(name, keras.ops.convert_to_numpy(variable))

    def node(self, op, inputs, name, outputs=1, **attributes):
        out = [self.unique(name) for _ in range(outputs)] if isinstance(outputs, int) else list(outputs)
        self.names.update(out)
        self.nodes.append(self.helper.make_node(op, list(inputs), out, name=self.unique(f"{name}/{op}"), **attributes))
        return out[0] if len(out) == 1 else out

    # --- the layers of modeling_distilbert.py -----------------------------------

    def dense(self, x, layer, name):
        kernel = self.weight(f"{name}.kernel", layer.kernel)  # Keras' [in, out]: x @ kernel
        bias = self.weight(f"{name}.bias", layer.bias)
        return self.node("Add", [self.node("MatMul", [x, kernel], f"{name}/matmul"), bias], f"{name}/out")

    def layer_norm(self, x, layer, name):
        gamma = self.weight(f"{name}.gamma", layer.gamma)
        beta = self.weight(f"{name}.beta", layer.beta)
        return self.node("LayerNormalization", [x, gamma, beta], f"{name}/out", axis=-1, epsilon=LAYER_NORM_EPSILON)

    def activation(self, x, activation, name):
        if activation == "relu":
            return self.node("Relu", [x], f"{name}/relu")
        # The exact erf GELU in the form torch's exporter writes, which ONNX
        # Runtime fuses into one Gelu kernel: x * (1 + erf(x / sqrt(2))) * 0.5.
        root_two = self.constant(f"{name}/sqrt2", np.sqrt(2.0))
        one, half = self.constant(f"{name}/one", 1.0), self.constant(f"{name}/half", 0.5)
        erf = self.node("Erf", [self.node("Div", [x, root_two], f"{name}/scaled")], f"{name}/erf")
        times = self.node("Mul", [x, self.node("Add", [erf, one], f"{name}/erf_plus_one")], f"{name}/times")
        return self.node("Mul", [times, half], f"{name}/gelu")

    def embeddings(self, input_ids, embedding_layer, word_table):
        """The embeddings' output as [tokens, hidden] (see `backbone`)."""
        positions = self.weight("embeddings.position_embedding", embedding_layer.position_embedding)
        zero = self.constant("embeddings/zero", [0], np.int64)
        sliced = self.node("Slice", [positions, zero, self.length, zero], "embeddings/positions")
        words = self.node("Gather", [word_table, input_ids], "embeddings/words", axis=0)
        summed = self.node("Add", [words, sliced], "embeddings/sum")
        normed = self.layer_norm(summed, embedding_layer.layer_norm, "embeddings.layer_norm")
        hidden = self.constant("embeddings/tokens_shape", [-1, embedding_layer.hidden_dim], np.int64)
        return self.node("Reshape", [normed, hidden], "embeddings/tokens")

    def sequences(self, tokens):
        """[tokens, hidden] back to [batch, length, hidden]."""
        if tokens not in self.sequence_of:
            self.sequence_of[tokens] = self.node("Reshape", [tokens, self.sequence_shape], f"{tokens}/sequences")
        return self.sequence_of[tokens]

    def attention(self, x, key_bias, attention_layer, name):
        heads, head_dim, hidden = attention_layer.num_heads, attention_layer.head_dim, attention_layer.hidden_dim
        # [tokens, hidden] -> [batch, length, heads, head_dim]: the batch is inferred.
        split_shape = self.node(
            "Concat",
            [
                self.constant(f"{name}/batch", [-1], np.int64),
                self.length,
                self.constant(f"{name}/heads", [heads, head_dim], np.int64),
            ],
            f"{name}/split_shape",
            axis=0,
        )

        def heads_of(dense, label, perm):
            projected = self.dense(x, dense, f"{name}.{label}")
            split = self.node("Reshape", [projected, split_shape], f"{name}/{label}_split")
            return self.node("Transpose", [split], f"{name}/{label}_heads", perm=perm)

        query = heads_of(attention_layer.query_dense, "query", [0, 2, 1, 3])  # [batch, heads, length, head_dim]
        key = heads_of(attention_layer.key_dense, "key", [0, 2, 3, 1])  # [batch, heads, head_dim, length]
        value = heads_of(attention_layer.value_dense, "value", [0, 2, 1, 3])
        scale = self.constant(f"{name}/scale", head_dim**-0.5)
        query = self.node("Mul", [query, scale], f"{name}/query_scaled")
        scores = self.node("MatMul", [query, key], f"{name}/scores")
        scores = self.node("Add", [scores, key_bias], f"{name}/masked_scores")
        weights = self.node("Softmax", [scores], f"{name}/weights", axis=-1)
        context = self.node("MatMul", [weights, value], f"{name}/context")
        context = self.node("Transpose", [context], f"{name}/context_tokens", perm=[0, 2, 1, 3])
        merge_shape = self.constant(f"{name}/merge_shape", [-1, hidden], np.int64)
        context = self.node("Reshape", [context, merge_shape], f"{name}/context_merged")
        return self.dense(context, attention_layer.output_dense, f"{name}.attention_output")

    def transformer_layer(self, x, key_bias, block, name):
        attended = self.attention(x, key_bias, block.attention, f"{name}.attention")
        x = self.layer_norm(
            self.node("Add", [attended, x], f"{name}/attention_residual"),
            block.attention_layer_norm,
            f"{name}.attention_layer_norm",
        )
        h = self.dense(x, block.intermediate_dense, f"{name}.intermediate")
        h = self.activation(h, block.activation, f"{name}.intermediate")
        h = self.dense(h, block.output_dense, f"{name}.output")
        return self.layer_norm(
            self.node("Add", [h, x], f"{name}/output_residual"), block.output_layer_norm, f"{name}.output_layer_norm"
        )

    def backbone(self, input_ids, attention_mask, backbone):
        """Every hidden state, the embeddings' output then each block's, as
        [tokens, hidden] (`sequences` gives them back their batch axis).

        Between the blocks the graph carries the real tokens flattened, so
        each Dense is a 2-D MatMul + Add, which ONNX Runtime runs as one Gemm
        (the bias added in the product), and each residual Add +
        LayerNormalization stays two kernels: ONNX Runtime would fuse their
        3-D form into its SkipLayerNormalization, which its CPU kernel runs
        several times slower than the pair."""
        self.ids_shape = self.node("Shape", [input_ids], "ids_shape")
        self.length = self.node(
            "Slice",
            [self.ids_shape, self.constant("one", [1], np.int64), self.constant("two", [2], np.int64)],
            "length",
        )
        hidden = self.constant("hidden", [backbone.hidden_dim], np.int64)
        self.sequence_shape = self.node("Concat", [self.ids_shape, hidden], "sequence_shape", axis=0)
        self.sequence_of = {}
        word_table = self.weight("embeddings.token_embedding", backbone.embeddings.token_embedding)
        key_is_real = self.node(
            "Unsqueeze",
            [
                self.node("Cast", [attention_mask], "mask/bool", to=self.onnx.TensorProto.BOOL),
                self.constant("mask/axes", [1, 2], np.int64),
            ],
            "mask/keys",
        )  # [batch, 1, 1, length]
        # Made once and added to every layer's scores: 0 on real keys, float32's
        # lowest on padding, which absorbs any score (lowest + s rounds back to
        # lowest), so the softmax sees what transformers' masking gives. A
        # broadcast Add costs ONNX Runtime less than a Where on the scores.
        lowest = self.constant("mask/lowest", np.finfo(np.float32).min)
        key_bias = self.node("Where", [key_is_real, self.constant("mask/zero", 0.0), lowest], "mask/key_bias")
        states = [self.embeddings(input_ids, backbone.embeddings, word_table)]
        for i, block in enumerate(backbone.transformer_layers):
            states.append(self.transformer_layer(states[-1], key_bias, block, f"transformer_layer_{i}"))
        return states, word_table

    def first_token(self, x, name):
        return self.node("Gather", [x, self.constant(f"{name}/index", 0, np.int64)], f"{name}/first_token", axis=1)


def check_exportable(model, path):
    """Everything the export refuses, before anything is written."""
    from distilbert_hub.distilbert_backbone import DistilBertBackbone

    if Path(path).exists():
        raise FileExistsError(f"{path} already exists; export writes a new file (remove it or choose another path).")
    if not Path(path).parent.is_dir():
        raise FileNotFoundError(f"{Path(path).parent} is not a directory; export writes {path} into it.")
    backbone = model if isinstance(model, DistilBertBackbone) else getattr(model, "backbone", None)
    if not isinstance(backbone, DistilBertBackbone):
        raise TypeError(f"ONNX export takes a DistilBertBackbone or one of its tasks; got {type(model).__name__}.")
    lora = [layer.path for layer in backbone.lora_layers()]
    if lora:
        raise ValueError(
            f"LoRA is enabled and not merged in {lora}: call merge_lora_weights() before export(format='onnx')."
        )
    for layer in [model, *model._flatten_layers(include_self=False)]:
        if layer.quantization_mode is not None:
            raise ValueError(
                f"layer '{layer.path}' is quantized by Keras ({layer.quantization_mode}); ONNX export takes the "
                "float32 model: export it unquantized with int8=True for ONNX Runtime's int8 quantization."
            )
        if layer.weights and (layer.compute_dtype != "float32" or layer.variable_dtype != "float32"):
            raise ValueError(
                f"ONNX export supports float32 models only; layer '{layer.path}' computes in "
                f"{layer.compute_dtype} with {layer.variable_dtype} weights (policy '{layer.dtype_policy.name}'). "
                "Load or build the model with dtype='float32', and pass int8=True for an int8 export."
            )
    return backbone


def head_outputs(builder, model, states, word_table):
    """{output name: graph value} of the task head on the last hidden state."""
    from distilbert_hub.distilbert_backbone import DistilBertBackbone
    from distilbert_hub.distilbert_masked_lm import DistilBertMaskedLM
    from distilbert_hub.distilbert_multiple_choice import DistilBertMultipleChoice
    from distilbert_hub.distilbert_question_answerer import DistilBertQuestionAnswerer
    from distilbert_hub.distilbert_text_classifier import DistilBertTextClassifier
    from distilbert_hub.distilbert_token_classifier import DistilBertTokenClassifier

    b = builder
    last = b.sequences(states[-1])
    if isinstance(model, DistilBertBackbone):
        return {"last_hidden_state": last}
    if isinstance(model, (DistilBertTextClassifier, DistilBertMultipleChoice)):
        activation = getattr(model, "activation", None)
        if activation not in TEXT_CLASSIFIER_ACTIVATIONS:
            raise ValueError(
                f"no ONNX operator for the classifier's activation {activation!r}; "
                f"choose one of {TEXT_CLASSIFIER_ACTIVATIONS}."
            )
        pooled = b.node("Relu", [b.dense(b.first_token(last, "head"), model.pooled_dense, "pre_classifier")], "head")
        logits = b.dense(pooled, model.output_dense, "classifier")  # dropout is the identity at inference
        if activation == "softmax":
            logits = b.node("Softmax", [logits], "classifier/softmax", axis=-1)
        elif activation == "sigmoid":
            logits = b.node("Sigmoid", [logits], "classifier/sigmoid")
        return {"logits": logits}
    if isinstance(model, DistilBertTokenClassifier):
        return {"logits": b.dense(last, model.output_dense, "classifier")}
    if isinstance(model, DistilBertQuestionAnswerer):
        logits = b.dense(last, model.output_dense, "qa_outputs")  # [batch, length, 2]
        return {
            name: b.node("Gather", [logits, b.constant(f"{name}/index", index, np.int64)], name, axis=2)
            for index, name in enumerate(("start_logits", "end_logits"))
        }
    if isinstance(model, DistilBertMaskedLM):
        head = model.masked_lm_head
        x = b.dense(last, head.transform_dense, "vocab_transform")
        x = b.activation(x, head.activation, "vocab_transform")
        x = b.layer_norm(x, head.layer_norm, "vocab_layer_norm")
        if b.untie_projector:  # its own [hidden, vocab] initializer, which ONNX Runtime's quantizer can quantize
            table = keras.ops.convert_to_numpy(model.backbone.embeddings.token_embedding)
            projector = b.constant("vocab_projector.weight", table.T)
        else:  # the word table stored once, transposed at session start (constant folding)
            projector = b.node("Transpose", [word_table], "vocab_projector/tied_weight", perm=[1, 0])
        bias = b.weight("vocab_projector.bias", head.bias)
        return {"logits": b.node("Add", [b.node("MatMul", [x, projector], "vocab_projector/matmul"), bias], "logits")}
    raise TypeError(f"no ONNX export for {type(model).__name__}: it is not one of the library's task classes.")


def output_shape(model, name):
    """An output's axes: named where dynamic, sizes where fixed."""
    tokens = ["batch_size", "sequence_length"]
    if name in ("start_logits", "end_logits"):
        return tokens
    if name != "logits":  # last_hidden_state, hidden_states.i
        return [*tokens, model.hidden_dim]
    kind = type(model).__name__
    if kind == "DistilBertMultipleChoice":
        return ["batch_size", "num_choices"]
    if kind == "DistilBertTextClassifier":
        return ["batch_size", model.num_classes]
    if kind == "DistilBertTokenClassifier":
        return [*tokens, model.num_classes]
    return [*tokens, model.backbone.vocabulary_size]  # the masked LM: logits at every position


def build_model(model, backbone, hidden_states=False, untie_projector=False):
    """The `onnx.ModelProto` of `model` (checked by `onnx.checker`).
    `untie_projector` stores the masked LM's projection apart from the word
    table (for int8, where only a stored MatMul weight is quantized)."""
    from distilbert_hub.distilbert_backbone import DistilBertBackbone
    from distilbert_hub.distilbert_multiple_choice import DistilBertMultipleChoice

    onnx = import_onnx()
    helper, int64, float32 = onnx.helper, onnx.TensorProto.INT64, onnx.TensorProto.FLOAT
    if hidden_states and not isinstance(model, DistilBertBackbone):
        raise ValueError("hidden_states=True is for the backbone; a task exports its head's outputs.")
    b = GraphBuilder(onnx, untie_projector=untie_projector)
    choices = isinstance(model, DistilBertMultipleChoice)
    axes = ["batch_size", "num_choices", "sequence_length"] if choices else ["batch_size", "sequence_length"]
    inputs = [helper.make_tensor_value_info(name, int64, axes) for name in ("input_ids", "attention_mask")]
    b.names.update(("input_ids", "attention_mask"))
    input_ids, attention_mask = "input_ids", "attention_mask"
    if choices:  # [batch, choices, length] -> [batch * choices, length], as DistilBertForMultipleChoice views them
        shape = b.node("Shape", ["input_ids"], "choices/shape")
        length = b.node(
            "Slice",
            [shape, b.constant("choices/two", [2], np.int64), b.constant("choices/three", [3], np.int64)],
            "choices/length",
        )
        flat = b.node("Concat", [b.constant("choices/rows", [-1], np.int64), length], "choices/flat_shape", axis=0)
        input_ids = b.node("Reshape", ["input_ids", flat], "choices/flat_ids")
        attention_mask = b.node("Reshape", ["attention_mask", flat], "choices/flat_mask")
    states, word_table = b.backbone(input_ids, attention_mask, backbone)
    outputs = head_outputs(b, model, states, word_table)
    if choices:
        batch_choices = b.node(
            "Slice",
            [shape, b.constant("choices/zero", [0], np.int64), b.constant("choices/two_end", [2], np.int64)],
            "choices/batch_choices",
        )
        outputs["logits"] = b.node("Reshape", [outputs["logits"], batch_choices], "choices/logits")
    if hidden_states:
        outputs |= {f"hidden_states.{i}": b.sequences(state) for i, state in enumerate(states)}

    # Graph outputs get their public names through Identity nodes.
    output_infos = []
    for name, value in outputs.items():
        if name != value:
            b.node("Identity", [value], name, outputs=[name])
        output_infos.append(helper.make_tensor_value_info(name, float32, output_shape(model, name)))
    graph = helper.make_graph(b.nodes, type(model).__name__, inputs, output_infos, initializer=b.initializers)
    proto = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
        producer_name="distilbert-hub",
        doc_string=f"{type(model).__name__}: the maths of transformers' DistilBERT, float32.",
    )
    proto.ir_version = ONNX_IR_VERSION
    size = sum(len(t.raw_data) for t in b.initializers)
    if size > PROTOBUF_LIMIT_BYTES:
        raise ValueError(f"{type(model).__name__} has {size} bytes of weights; one ONNX file holds under 2 GiB.")
    onnx.checker.check_model(proto)
    return proto


def quantize_int8(source, target):
    """ONNX Runtime's dynamic quantization: int8 weights of every MatMul
    (the heads' included), activations quantized per batch at run time.

    The weights take 7 bits (`reduce_range`): on x86 CPUs without VNNI
    (AVX2), ONNX Runtime multiplies uint8 activations by int8 weights with
    instructions that saturate a pair's sum at int16, which a full 8-bit
    weight range overflows (relative error 0.40 on the QA golden, AMD EPYC
    AVX2); 7-bit weights never do, on any CPU. One scale per output column
    (`per_channel`) wins back the bit's precision; neither changes the
    kernels ONNX Runtime runs."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as error:
        raise ImportError(
            "int8=True needs onnxruntime's quantization tools: pip install 'distilbert-hub[onnx]'."
        ) from error
    root = logging.getLogger()
    advice = QuantizerAdvice()
    root.addFilter(advice)
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, reduce_range=True, per_channel=True)
    finally:
        root.removeFilter(advice)


class QuantizerAdvice(logging.Filter):
    """Drops the quantizer's advice to run its pre-processing (shape
    inference and graph optimization): the exported graph is already plain,
    and every MatMul weight it holds is quantized without it."""

    def filter(self, record):
        return "pre-processing before quantization" not in record.getMessage()


def export_onnx(model, path, int8=False, hidden_states=False):
    """Write `model` (a backbone or a task) as one ONNX file at `path`.

    Args:
        model: a float32 `DistilBertBackbone` or task model (LoRA merged).
        path: the new `.onnx` file; it must not exist. It is written in a
            temporary file beside it and renamed, so a failed export leaves
            nothing at `path`.
        int8: quantize with ONNX Runtime's `quantize_dynamic` (int8 weights).
        hidden_states: the backbone also returns `hidden_states.0` (the
            embeddings' output) to `hidden_states.{num_layers}`, as
            transformers' `output_hidden_states=True`.
    """
    path = Path(os.fspath(path))
    backbone = check_exportable(model, path)
    onnx = import_onnx()
    proto = build_model(model, backbone, hidden_states=hidden_states, untie_projector=int8)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as scratch:
        written = Path(scratch) / "model.onnx"
        onnx.save_model(proto, str(written))
        if int8:
            quantized = Path(scratch) / "model.int8.onnx"
            quantize_int8(written, quantized)
            written = quantized
        if path.exists():  # appeared while the export ran
            raise FileExistsError(f"{path} already exists; export writes a new file.")
        os.replace(written, path)
    return path


def run_onnx(path, token_ids, padding_mask):
    """{output name: array} of an exported model in ONNX Runtime on CPU."""
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError("running an ONNX export needs onnxruntime: pip install 'distilbert-hub[onnx]'.") from error
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {"input_ids": np.asarray(token_ids, np.int64), "attention_mask": np.asarray(padding_mask, np.int64)}
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))
