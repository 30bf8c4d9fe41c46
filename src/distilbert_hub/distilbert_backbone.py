import keras
from keras.dtype_policies import DTypePolicyMap

from distilbert_hub import preset_utils
from distilbert_hub.functional_model import CheckedFunctional, FunctionalModel, attribute_set_to, one_garbage_collection
from distilbert_hub.hardware import warn_if_bf16_is_emulated
from distilbert_hub.inference import strategy_for
from distilbert_hub.input_checks import check_token_inputs
from distilbert_hub.layers.distilbert_embedding import DistilBertEmbedding
from distilbert_hub.layers.distilbert_transformer_layer import DistilBertTransformerLayer
from distilbert_hub.layers.int8_smoothing import own_policy, smoothed_layers


def quantized_policy_map(model, layers):
    """A `DTypePolicyMap` of the quantized `layers` by path, and of the Dense
    layers a calibrated int8 left in another compute dtype, or None if there
    is none: KerasHub's way to keep quantization through `get_config`, since
    every layer takes the map as its dtype and looks its own path up in it."""
    default = model.dtype_policy
    if isinstance(default, DTypePolicyMap):
        default = default.default_policy
    policy_map = DTypePolicyMap(default_policy=default)
    for layer in layers:
        if layer.quantization_mode is not None or (
            isinstance(layer, keras.layers.Dense) and own_policy(layer).name != default.name
        ):
            policy_map[layer.path] = own_policy(layer)
    return policy_map if len(policy_map) else None


@keras.saving.register_keras_serializable(package="distilbert_hub")
class DistilBertBackbone(FunctionalModel):
    """The DistilBERT encoder, numerically equal to `transformers.DistilBertModel`.

    Takes `{"token_ids": int [batch, length], "padding_mask": int [batch, length]}`
    and returns the last hidden states `[batch, length, hidden_dim]`.
    `hidden_states_model()` gives a model returning the embedding output and
    every layer's output, as `output_hidden_states=True` does in `transformers`.

    Args:
        vocabulary_size: number of token ids.
        num_layers: number of transformer blocks (HF `n_layers`).
        num_heads: attention heads per block (HF `n_heads`).
        hidden_dim: width of the hidden states (HF `dim`).
        intermediate_dim: width of the feed-forward layer (HF `hidden_dim`).
        dropout: dropout after embeddings and feed-forward (HF `dropout`).
        max_sequence_length: number of positions (HF `max_position_embeddings`).
        attention_dropout: dropout on attention weights (HF `attention_dropout`);
            None uses `dropout`.
        activation: `"gelu"` (exact erf form) or `"relu"` (HF `activation`).
        sinusoidal_position_embedding: fixed sinusoidal position table
            (HF `sinusoidal_pos_embds`).
        dtype: a dtype or `keras.DTypePolicy` for computations and weights.
    """

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        dropout=0.1,
        max_sequence_length=512,
        attention_dropout=None,
        activation="gelu",
        sinusoidal_position_embedding=False,
        dtype=None,
        **kwargs,
    ):
        for name, value in (
            ("vocabulary_size", vocabulary_size),
            ("num_layers", num_layers),
            ("num_heads", num_heads),
            ("hidden_dim", hidden_dim),
            ("intermediate_dim", intermediate_dim),
            ("max_sequence_length", max_sequence_length),
        ):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}.")
        if attention_dropout is None:
            attention_dropout = dropout

        # === Layers ===
        self.embeddings = DistilBertEmbedding(
            vocabulary_size=vocabulary_size,
            max_sequence_length=max_sequence_length,
            hidden_dim=hidden_dim,
            dropout=dropout,
            sinusoidal_position_embedding=sinusoidal_position_embedding,
            dtype=dtype,
            name="embeddings",
        )
        self.transformer_layers = [
            DistilBertTransformerLayer(
                num_heads=num_heads,
                hidden_dim=hidden_dim,
                intermediate_dim=intermediate_dim,
                dropout=dropout,
                attention_dropout=attention_dropout,
                activation=activation,
                dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]

        # === Functional Model ===
        token_id_input = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask_input = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        x = self.embeddings(token_id_input)
        for transformer_layer in self.transformer_layers:
            x = transformer_layer(x, padding_mask=padding_mask_input)
        super().__init__(
            inputs={"token_ids": token_id_input, "padding_mask": padding_mask_input}, outputs=x, dtype=dtype, **kwargs
        )
        # A functional model keeps a float32 policy whatever `dtype` says;
        # set it, so get_config (and every round trip) keeps the precision.
        if dtype is not None:
            self.dtype_policy = dtype
        warn_if_bf16_is_emulated(self.embeddings.dtype_policy)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.max_sequence_length = max_sequence_length
        self.attention_dropout = attention_dropout
        self.activation = activation
        self.sinusoidal_position_embedding = sinusoidal_position_embedding
        self._finish_init()

    # The strategy `predict_step` hands over for one step (`inference`); None
    # runs the reference layers.
    _inference_strategy = None

    def inference(self, strategy):
        """Within this block the backbone's inference calls (also from a task's
        graph) compute its output with `strategy`, a
        `distilbert_hub.inference.InferenceStrategy` (None: the reference
        layers). Calls with `training=True` always run the reference."""
        return attribute_set_to(self, "_inference_strategy", strategy)

    def call(self, inputs, training=None, mask=None):
        strategy = self._inference_strategy
        if strategy is None or training:
            return super().call(inputs, training=training, mask=mask)
        token_ids, padding_mask = (
            keras.ops.convert_to_tensor(inputs[k], "int32") for k in ("token_ids", "padding_mask")
        )
        return strategy.forward(self, token_ids, padding_mask)

    def predict_step(self, *args, **kwargs):
        # jax's takes (state, data), the others (data).
        with self.inference(strategy_for("every_token")):
            return super().predict_step(*args, **kwargs)

    @property
    def token_embedding(self):
        """The `[vocabulary_size, hidden_dim]` token embedding variable."""
        return self.embeddings.token_embedding

    def hidden_states_model(self):
        """A model with the same inputs returning `num_layers + 1` hidden states.

        Index 0 is the embedding output; index i is block i's output, like
        `transformers`' `hidden_states` with `output_hidden_states=True`.
        """
        outputs = [self.embeddings.output] + [layer.output for layer in self.transformer_layers]
        return CheckedFunctional(self.input, outputs, self.check_inputs, name=f"{self.name}_hidden_states")

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """A backbone from a preset name (`distil_bert_base_en_uncased`, ...),
        `hf://org/name`, a Hugging Face checkpoint directory (safetensors,
        sharded or `pytorch_model.bin`; bare or `distilbert.`-prefixed keys) or
        a directory written by `save_to_preset`. `kwargs` override the
        config (e.g. `dtype`)."""
        return preset_utils.get_preset_loader(preset).load_backbone(cls, load_weights=load_weights, **kwargs)

    def save_to_preset(self, preset_dir):
        """Config, weights and metadata in a new directory (written atomically)."""
        preset_utils.get_preset_saver(preset_dir).save_backbone(self)

    def export_to_transformers(self, path):
        """A directory `transformers.AutoModel.from_pretrained` loads as this backbone."""
        preset_utils.export_to_transformers(self, path)

    def enable_lora(self, rank, target_names=("query", "value"), lora_alpha=None):
        """LoRA, as KerasHub's `Backbone.enable_lora`: every weight is frozen,
        and each Dense layer named in `target_names` (of "query", "key",
        "value", "attention_output", "intermediate", "output") gets a trainable
        rank-`rank` update: the kernel becomes W + (lora_alpha / rank) * A @ B
        (Keras' convention, as PEFT's W + (alpha / r) * B @ A in torch layout);
        `lora_alpha` defaults to `rank`, a scale of 1. Outputs are unchanged
        until the update trains."""
        if isinstance(rank, bool) or int(rank) != rank or rank < 1:
            raise ValueError(f"rank must be a positive integer; got {rank!r}.")
        smoothed = smoothed_layers(self)
        if smoothed:
            raise ValueError(
                f"enable_lora: {len(smoothed)} Dense layers (first: {smoothed[0].path}) are int8 with calibrated "
                "smoothing, which does not train; for QLoRA, quantize without calibration."
            )
        if lora_alpha is not None and not lora_alpha > 0:
            raise ValueError(f"lora_alpha must be a positive number; got {lora_alpha!r}.")
        dense_layers = [
            layer for layer in self._flatten_layers(include_self=False) if isinstance(layer, keras.layers.Dense)
        ]
        unknown = sorted(set(target_names) - {layer.name for layer in dense_layers})
        if unknown:
            raise ValueError(
                f"no Dense layer named {unknown}; choose from {sorted({layer.name for layer in dense_layers})}."
            )
        targets = [layer for layer in dense_layers if layer.name in target_names]
        for layer in targets:
            width = min(int(layer.kernel.shape[0]), int(layer.units))
            if rank > width:
                raise ValueError(
                    f"rank {rank} is above the width {width} of Dense layer '{layer.path}' "
                    f"({layer.kernel.shape[0]} -> {layer.units}): a rank-{rank} update would not be low-rank."
                )
        for variable in self.weights:  # frozen one by one: the layers stay trainable for the updates
            variable.trainable = False
        for layer in targets:
            layer.enable_lora(int(rank), lora_alpha=lora_alpha)

    def merge_lora_weights(self):
        """Fold every LoRA update into its kernel and drop the LoRA matrices:
        a plain backbone again (every weight trainable), computing what the
        LoRA backbone computed up to float rounding."""
        layers = self.lora_layers()
        if not layers:
            raise ValueError("no LoRA weights to merge: call enable_lora(rank) first.")
        quantized = [layer.path for layer in layers if layer.quantization_mode is not None]
        if quantized:
            raise ValueError(f"cannot merge LoRA into quantized kernels {quantized}; merge before quantize().")
        with one_garbage_collection():
            for layer in layers:
                merged = keras.ops.convert_to_numpy(layer.kernel)
                # Private Keras API (no public way to take LoRA off a Dense);
                # guarded by tests/test_keras_private_api.py.
                layer._tracker.unlock()
                del layer.lora_kernel_a
                del layer.lora_kernel_b
                layer._tracker.lock()
                layer.lora_enabled, layer.lora_rank, layer.lora_alpha = False, None, None
                layer.kernel.assign(merged)
        for variable in self.weights:
            variable.trainable = True
        self.embeddings.position_embedding.trainable = not self.sinusoidal_position_embedding

    def save_lora_weights(self, filepath):
        """Only the LoRA matrices, in an HDF5 file keyed by layer path."""
        import h5py

        layers = self.lora_layers()
        if not layers:
            raise ValueError("no LoRA weights: call enable_lora(rank) first.")
        with h5py.File(filepath, "w") as f:
            for layer in layers:
                f[f"{layer.path}/lora_kernel_a"] = keras.ops.convert_to_numpy(layer.lora_kernel_a)
                f[f"{layer.path}/lora_kernel_b"] = keras.ops.convert_to_numpy(layer.lora_kernel_b)

    def load_lora_weights(self, filepath):
        """LoRA matrices saved by `save_lora_weights` into a backbone with LoRA
        enabled at the same rank; every key and shape is checked first."""
        import h5py

        layers = self.lora_layers()
        with h5py.File(filepath, "r") as f:
            values = {}
            for layer in layers:
                for name in ("lora_kernel_a", "lora_kernel_b"):
                    key, variable = f"{layer.path}/{name}", getattr(layer, name)
                    if key not in f:
                        raise ValueError(f"{filepath}: no '{key}'; enable LoRA on the same layers first.")
                    if tuple(f[key].shape) != tuple(variable.shape):
                        raise ValueError(
                            f"{filepath}: '{key}' has shape {tuple(f[key].shape)}, expected "
                            f"{tuple(variable.shape)} (another rank?)."
                        )
                    values[key] = (variable, f[key][()])
        for variable, value in values.values():
            variable.assign(value)

    @staticmethod
    def get_layout_map(device_mesh, model_parallel_dim_name="model", data_parallel_dim_name="batch"):
        """A `keras.distribution.LayoutMap` for `ModelParallel` (KerasHub's
        recipe): the embeddings split along hidden units; in each block, the
        query, key, value and first feed-forward kernels split by output
        column and the attention-output and second feed-forward kernels by
        input row, so each block needs one all-reduce per half (Megatron).

            mesh = keras.distribution.DeviceMesh((2, 4), ("batch", "model"), keras.distribution.list_devices())
            layout_map = DistilBertBackbone.get_layout_map(mesh)
            keras.distribution.set_distribution(
                keras.distribution.ModelParallel(layout_map=layout_map, batch_dim_name="batch"))

        `data_parallel_dim_name` must name the other mesh axis; the layout
        map only shards weights, the batch is split by the distribution."""
        names = tuple(device_mesh.axis_names)
        for name in (model_parallel_dim_name, data_parallel_dim_name):
            if name not in names:
                raise ValueError(f"device_mesh has axes {names}; no '{name}' axis.")
        model = model_parallel_dim_name
        layout_map = keras.distribution.LayoutMap(device_mesh)
        block = r"(.*/)?transformer_layer_\d+/"  # keys must match a variable's whole path
        layout_map[r"(.*/)?embeddings/(token|position)_embedding"] = (None, model)
        layout_map[block + r"attention/(query|key|value)/kernel"] = (None, model)
        layout_map[block + r"attention/(query|key|value)/bias"] = (model,)
        layout_map[block + r"attention/attention_output/kernel"] = (model, None)
        layout_map[block + r"intermediate/kernel"] = (None, model)
        layout_map[block + r"intermediate/bias"] = (model,)
        layout_map[block + r"output/kernel"] = (model, None)
        return layout_map

    def check_inputs(self, inputs):
        check_token_inputs(inputs, self.vocabulary_size, self.max_sequence_length, type(self).__name__)

    def get_config(self):
        return super().get_config() | {
            "vocabulary_size": self.vocabulary_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
            "max_sequence_length": self.max_sequence_length,
            "attention_dropout": self.attention_dropout,
            "activation": self.activation,
            "sinusoidal_position_embedding": self.sinusoidal_position_embedding,
            "dtype": keras.dtype_policies.serialize(
                quantized_policy_map(self, self._flatten_layers(include_self=False)) or self.dtype_policy
            ),
        }
