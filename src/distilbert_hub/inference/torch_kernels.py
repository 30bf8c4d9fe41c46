import functools

import keras
from keras import ops

from distilbert_hub import hardware
from distilbert_hub.hardware import torch_reduced_precision_gemm_is_onednn
from distilbert_hub.inference.strategy import InferenceStrategy
from distilbert_hub.layers.int8_smoothing import SmoothingQuantizer


class TorchKernels(InferenceStrategy):
    """The backbone's blocks in torch's own kernels, eagerly (torch only):
    no `Layer.__call__` per sublayer (its bookkeeping is most of a short
    batch's time); each Dense one GEMM with its bias (`F.linear`; Keras adds
    the bias in a second pass); an int8 Dense on CPU an integer GEMM
    (`torch._int_mm`; Keras takes it only on CUDA), both exact in int32;
    attention torch's fused SDPA in float32, bf16 and fp16 (its softmax
    accumulates in float32, as the reference's). Reading the real tokens,
    the blocks run on them alone, packed as the rows of a matrix
    (`RealTokens`); reading the first token, the blocks before the last do
    so and the last runs at the first token only. A sublayer it does not
    cover (mixed precision with LoRA or quantization, another quantization
    mode) goes through Keras' `__call__`.
    """

    def applies(self):
        return keras.backend.backend() == "torch"

    def forward(self, backbone, token_ids, padding_mask):
        import torch

        hidden_states = backbone.embeddings(token_ids)
        is_real = padding_mask.bool()
        # transformers' additive mask: the float32 lowest value at padded keys;
        # none without padding, so that SDPA takes its unmasked kernel.
        mask = None
        if not bool(is_real.all()):
            mask = torch.where(is_real, 0.0, torch.finfo(torch.float32).min)[:, None, None, :]
        first_token_only = self.reads == "first_token"
        tokens = RealTokens.of(is_real, first_token_only) if self.reads != "every_token" else None
        if tokens is not None:
            hidden_states = tokens.pack(hidden_states)
        for layer in backbone.transformer_layers[:-1] if first_token_only else backbone.transformer_layers:
            hidden_states = self.block(layer, hidden_states, hidden_states, (is_real, mask, tokens))
        if tokens is not None:
            hidden_states = tokens.unpack(hidden_states)
        if first_token_only:
            return self.first_token_block(backbone.transformer_layers[-1], hidden_states, (is_real, mask, None))
        return hidden_states

    def attend(self, attention, query, key, value, padding):
        """`padding` is (is_real, the additive mask, the `RealTokens` the
        projections are packed by or None)."""
        import torch

        is_real, mask, tokens = padding
        if tokens is not None:
            query, key, value = tokens.unpack(query), tokens.unpack(key), tokens.unpack(value)
        # A projection left in bf16 beside int8 ones (`unquantized_dtype`) meets the others in the promoted
        # dtype, as Keras' ops promote them in the reference; SDPA takes one dtype.
        dtype = functools.reduce(torch.promote_types, (query.dtype, key.dtype, value.dtype))
        query, key, value = query.to(dtype), key.to(dtype), value.to(dtype)
        if attention.compute_dtype in ("float32", "bfloat16", "float16"):
            # SDPA's fused kernels accumulate the softmax in float32 in every dtype, as the reference does.
            batch, query_length = query.shape[0], query.shape[1]

            def heads(x):  # [batch, length, hidden_dim] -> [batch, heads, length, head_dim]
                return x.reshape(batch, x.shape[1], attention.num_heads, attention.head_dim).transpose(1, 2)

            context = torch.nn.functional.scaled_dot_product_attention(
                heads(query),
                heads(key),
                heads(value),
                attn_mask=None if mask is None else mask.to(query.dtype),
                scale=attention.scaling,
            )
            context = context.transpose(1, 2).reshape(batch, query_length, -1)
        else:  # the reference's attention, with its float32 softmax
            context = super().attend(attention, query, key, value, is_real)
        return context if tokens is None else tokens.pack(context)

    def dense(self, layer, x):
        """`layer(x)` for a Dense layer without activation, in one torch kernel where one applies."""
        import torch

        if layer.activation is not keras.activations.linear:
            return layer(x)
        if layer.quantization_mode == "int8" and integer_gemm_applies(layer, x):
            return int8_dense(layer, x)
        mixed = layer.compute_dtype != layer.variable_dtype
        if layer.quantization_mode is not None or (mixed and layer.lora_enabled):
            return layer(x)
        # With LoRA `layer.kernel` is a tensor (W + scale * A @ B); under mixed precision
        # Keras' autocast reads the weights and the input in the compute dtype, as `.to` does here.
        x = x.to(getattr(torch, layer.compute_dtype))
        kernel = ops.convert_to_tensor(layer.kernel).to(x.dtype).T  # [out, in], torch.nn.Linear's layout
        if x.dtype != torch.float32 and x.device.type == "cpu" and not torch_reduced_precision_gemm_is_onednn():
            kernel = kernel.contiguous()  # that GEMM reads a transposed view ten times slower (AVX2)
        bias = None if layer.bias is None else layer.bias.value.to(x.dtype)
        return torch.nn.functional.linear(x, kernel, bias)

    def layer_norm(self, layer, x):
        """`layer(x)` for a LayerNormalization: torch's kernel in float32, as
        `keras.ops.layer_normalization` computes it, except under mixed precision."""
        import torch

        if layer.compute_dtype != layer.variable_dtype:
            return layer(x)
        gamma, beta = layer.gamma.value.float(), layer.beta.value.float()
        return torch.nn.functional.layer_norm(x.float(), x.shape[-1:], gamma, beta, layer.epsilon).to(x.dtype)


def integer_gemm_applies(layer, x):
    import torch

    quantizer = getattr(layer, "inputs_quantizer", None)
    return (
        not layer.lora_enabled
        and type(quantizer) in (keras.quantizers.AbsMaxQuantizer, SmoothingQuantizer)
        and quantizer.output_dtype == "int8"
        and not torch.is_grad_enabled()
        and x.device.type == "cpu"
        and x.dtype == torch.float32
    )


def int8_dense(layer, x):
    """Keras' int8 Dense (abs-max per-row input scales, per-column kernel
    scales; the input smoothed first where calibrated), with the GEMM in
    int8 x int8 -> int32 where the CPU has int8 dot products, and in
    float32 over the same integers where it has not."""
    import torch

    quantizer = layer.inputs_quantizer
    if isinstance(quantizer, SmoothingQuantizer):
        x = x / torch.from_numpy(quantizer.smoothing)
    low, high = quantizer.value_range
    inputs_scale = high / (x.abs().amax(dim=-1, keepdim=True) + quantizer.epsilon)
    quantized = (x * inputs_scale).round_().clamp_(low, high).to(torch.int8)
    rows, kernel = quantized.reshape(-1, quantized.shape[-1]), ops.convert_to_tensor(layer.kernel)
    if hardware.torch_integer_gemm_is_native():
        y = torch._int_mm(rows, kernel)
    else:  # the same integer sums: exact in float32 below 2**24, always so up to 1,040 products (127**2 each)
        y = rows.to(torch.float32) @ kernel.to(torch.float32)
    y = y.reshape(*quantized.shape[:-1], layer.units).to(x.dtype)
    y = y.div_(ops.convert_to_tensor(layer.kernel_scale) * inputs_scale)
    return y if layer.bias is None else y.add_(layer.bias.value)


class RealTokens:
    """The real (unpadded) tokens of a padded batch as the rows of a
    `[tokens, features]` matrix: a batch of mixed lengths drops its padding
    from every GEMM. Padded positions never reach a real token (their keys
    are masked in every attention), so the real tokens' states are unchanged.

    Torch only: the number of real tokens changes from batch to batch, which
    jax and tensorflow would compile once per count.
    """

    @classmethod
    def of(cls, is_real, first_token_read=False):
        """None where there is no padding, or, with `first_token_read`, where
        a row's first token is padding: the last layer reads that position's
        state, which only the padded batch computes."""
        if bool(is_real.all()) or (first_token_read and not bool(is_real[:, 0].all())):
            return None
        return cls(is_real)

    def __init__(self, is_real):
        self.batch, self.length = is_real.shape
        self.rows = is_real.reshape(-1).nonzero().squeeze(1)

    def pack(self, padded):
        """`[batch, length, features]` -> `[tokens, features]`."""
        return padded.reshape(self.batch * self.length, -1).index_select(0, self.rows)

    def unpack(self, packed):
        """`[tokens, features]` -> `[batch, length, features]`, zeros at padding."""
        padded = packed.new_zeros(self.batch * self.length, packed.shape[-1]).index_copy_(0, self.rows, packed)
        return padded.reshape(self.batch, self.length, -1)
