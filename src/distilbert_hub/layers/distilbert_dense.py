import keras
from keras import ops


@keras.saving.register_keras_serializable(package="distilbert_hub")
class DistilBertDense(keras.layers.Dense):
    """`keras.layers.Dense` with two kernels of its own on the torch backend.

    * Float: the bias is added inside the GEMM (`torch.nn.functional.linear`,
      as `torch.nn.Linear` does). Keras adds it in a second pass over the
      output, which cost 6% of a forward on short batches (measured with the
      torch profiler on an AVX-512 Xeon: 0.12 s of 2.1 s, 128 texts).
    * int8 inference on CPU: an integer GEMM (`torch._int_mm`). Keras takes
      that kernel only on CUDA and for 2-D inputs; elsewhere it multiplies int8
      tensors as int32 without BLAS (measured 20x slower than float32 on an
      AVX-512 Xeon, where the integer GEMM is 4.6x faster). Both accumulate
      exactly in int32, so the outputs are the same.

    Every other backend, mode and case (int8 training, LoRA on int8) takes
    Keras' own path.
    """

    def call(self, inputs, training=None):
        if keras.backend.backend() != "torch":
            return super().call(inputs, training=training)
        import torch

        # `__call__` (or `call_sublayer`) hands over inputs in the compute
        # dtype, and the autocast scope reads the weights in it (`.value`, at a
        # tenth of the dispatch cost of `ops.convert_to_tensor`; with LoRA the
        # kernel is already a tensor).
        kernel = self.kernel
        if isinstance(kernel, keras.Variable):
            kernel = kernel.value
        bias = None if self.bias is None else self.bias.value
        x = torch.nn.functional.linear(inputs, kernel.T, bias)
        if self.activation is not None:
            x = self.activation(x)
        return x

    def quantize(self, mode=None, **kwargs):
        # Keras' type check refuses subclasses of Dense; this one changes no
        # weight and no quantization rule.
        super().quantize(mode, **(kwargs | {"type_check": False}))

    def _int8_call(self, inputs, training=None):
        if not self._integer_gemm_applies(inputs):
            return super()._int8_call(inputs, training=training)
        import torch

        # Keras' abs-max quantizer, op for op, with the elementwise steps in place.
        quantizer = self.inputs_quantizer
        low, high = quantizer.value_range
        inputs_scale = high / (inputs.abs().amax(dim=-1, keepdim=True) + quantizer.epsilon)
        quantized = (inputs * inputs_scale).round_().clamp_(low, high).to(torch.int8)
        rows = quantized.reshape(-1, quantized.shape[-1])
        x = torch._int_mm(rows, ops.convert_to_tensor(self._kernel)).reshape(*quantized.shape[:-1], self.units)
        x = x.to(inputs.dtype).div_(ops.convert_to_tensor(self.kernel_scale) * inputs_scale)
        if self.bias is not None:
            x = x.add_(ops.convert_to_tensor(self.bias))
        if self.activation is not None:
            x = self.activation(x)
        return x

    def _integer_gemm_applies(self, inputs):
        if keras.backend.backend() != "torch" or self.lora_enabled:
            return False
        quantizer = getattr(self, "inputs_quantizer", None)
        if type(quantizer) is not keras.quantizers.AbsMaxQuantizer or quantizer.output_dtype != "int8":
            return False
        import torch

        return not torch.is_grad_enabled() and inputs.device.type == "cpu" and inputs.dtype == torch.float32
