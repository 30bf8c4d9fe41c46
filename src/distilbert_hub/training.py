"""The fine-tuning recipe of transformers' `Trainer`, as Keras objects.

`trainer_optimizer(total_steps)` returns what `Trainer` builds by default:
`torch.optim.AdamW` (betas 0.9/0.999, eps 1e-8) driven by
`get_linear_schedule_with_warmup`, weight decay skipped for biases and
LayerNorm weights (`Trainer.get_decay_parameter_names`), gradients clipped to
global norm 1.0 (`clip_grad_norm_`). Pass it to `task.compile(optimizer=...)`.

Keras' own `AdamW` is not torch's: it folds the bias corrections into the
step size (`lr * sqrt(1 - b2^t) / (1 - b1^t)`) and adds eps to the
uncorrected `sqrt(v)`, so its eps is `sqrt(1 - b2^t)` times torch's (0.03x at
step 1); and with gradient accumulation it feeds the schedule the micro-batch
count. `TorchAdamW` computes torch's update, step by step.
"""

import keras
from keras import ops

# Keras names of the variables `Trainer` does not decay: biases (its
# "bias" name pattern; the masked LM's `vocab_bias` included) and LayerNorm
# weights (its `nn.LayerNorm` rule), the `gamma` and `beta` of
# `keras.layers.LayerNormalization`, the only layer here with those names.
NO_DECAY_VARIABLE_NAMES = ("bias", "gamma", "beta")


@keras.saving.register_keras_serializable(package="distilbert_hub")
class LinearWarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`transformers.get_linear_schedule_with_warmup`: the rate rises
    linearly from 0 over `warmup_steps` optimizer steps, then falls linearly to
    0 at `total_steps`. Step 0 (the first update) uses rate 0 when
    `warmup_steps > 0`, as `LambdaLR` does."""

    def __init__(self, learning_rate, total_steps, warmup_steps=0):
        check_schedule(learning_rate, total_steps, warmup_steps)
        self.learning_rate = float(learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warming = step / max(1, self.warmup_steps)
        decaying = ops.maximum(0.0, (self.total_steps - step) / max(1, self.total_steps - self.warmup_steps))
        return self.learning_rate * ops.where(step < self.warmup_steps, warming, decaying)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}


def check_schedule(learning_rate, total_steps, warmup_steps):
    if not learning_rate >= 0:
        raise ValueError(f"learning_rate must be >= 0; got {learning_rate!r}.")
    if int(total_steps) != total_steps or total_steps < 1:
        raise ValueError(f"total_steps must be an integer >= 1; got {total_steps!r}.")
    if int(warmup_steps) != warmup_steps or warmup_steps < 0:
        raise ValueError(f"warmup_steps must be an integer >= 0; got {warmup_steps!r}.")
    if warmup_steps > total_steps:
        raise ValueError(
            f"warmup_steps ({warmup_steps}) exceeds total_steps ({total_steps}): the schedule would never decay."
        )


@keras.saving.register_keras_serializable(package="distilbert_hub")
class TorchAdamW(keras.optimizers.Optimizer):
    """AdamW computing `torch.optim.AdamW`'s update:

        p *= 1 - lr * weight_decay
        m = m + (1 - beta_1) * (g - m);  v = beta_2 * v + (1 - beta_2) * g^2
        p -= lr / (1 - beta_1^t) * m / (sqrt(v) / sqrt(1 - beta_2^t) + epsilon)

    with `t` the number of updates so far (with `gradient_accumulation_steps`,
    updates, not micro-batches; the learning-rate schedule is read at the same
    count). Weight decay is Keras' (applied before the step, as torch does);
    exclude variables with `exclude_from_weight_decay`. Moments and updates
    are in the variables' dtype, float32 under mixed precision."""

    def __init__(
        self,
        learning_rate=1e-3,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        weight_decay=0.01,
        name="torch_adamw",
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def apply(self, grads, trainable_variables=None):
        # TensorFlow hands an embedding's gradient as IndexedSlices, one row
        # per lookup; Keras' ops square those rows before repeated ids are
        # summed, so the global norm for clipping and Adam's second moment
        # would miss the cross terms of a token seen twice in a batch. Dense
        # gradients are what torch computes (a no-op on jax and torch).
        return super().apply([dense(g) for g in grads], trainable_variables)

    def _get_current_learning_rate(self):
        # Keras reads a schedule at the micro-batch count; torch's scheduler
        # steps once per update (`self.iterations` counts updates). Private
        # Keras hooks (no public per-update schedule hook); guarded by
        # tests/test_keras_private_api.py.
        if isinstance(self._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
            return self._learning_rate(self.iterations)
        return super()._get_current_learning_rate()

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums = self.add_optimizer_variables(var_list, "momentum")
        self._velocities = self.add_optimizer_variables(var_list, "velocity")

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        learning_rate = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = ops.cast(self.beta_1, dtype), ops.cast(self.beta_2, dtype)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        self.assign(m, ops.add(m, ops.multiply(ops.subtract(gradient, m), 1 - beta_1)))
        self.assign(v, ops.add(ops.multiply(v, beta_2), ops.multiply(ops.square(gradient), 1 - beta_2)))
        step_size = learning_rate / (1 - ops.power(beta_1, step))
        denominator = ops.sqrt(v) / ops.sqrt(1 - ops.power(beta_2, step)) + ops.cast(self.epsilon, dtype)
        self.assign_sub(variable, ops.multiply(ops.divide(m, denominator), step_size))

    def get_config(self):
        return super().get_config() | {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


def dense(gradient):
    """A TensorFlow IndexedSlices gradient as the dense tensor it stands for."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if isinstance(gradient, tf.IndexedSlices):
            return tf.convert_to_tensor(gradient)
    return gradient


def trainer_optimizer(
    total_steps,
    learning_rate=5e-5,
    warmup_steps=0,
    weight_decay=0.0,
    max_grad_norm=1.0,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-8,
    gradient_accumulation_steps=None,
):
    """The optimizer `transformers.Trainer` builds from `TrainingArguments`
    with these values (its defaults, except `total_steps`, which the Trainer
    derives from the data: optimizer updates, i.e. batches divided by
    `gradient_accumulation_steps`). For `task.compile(optimizer=...)`.

    Biases and LayerNorm weights are not decayed. `max_grad_norm=None`
    disables clipping. Keras clips the global norm with scale
    `min(1, max_norm / norm)`, torch with `min(1, max_norm / (norm + 1e-6))`:
    a relative difference of 1e-6 / norm, below float32 resolution for norms
    >= 10 and, as Adam divides by the gradients' scale, nearly cancelled."""
    schedule = LinearWarmupDecay(learning_rate, total_steps, warmup_steps)
    if max_grad_norm is not None and not max_grad_norm > 0:
        raise ValueError(f"max_grad_norm must be > 0 (or None for no clipping); got {max_grad_norm!r}.")
    if gradient_accumulation_steps is not None and (
        int(gradient_accumulation_steps) != gradient_accumulation_steps or gradient_accumulation_steps < 1
    ):
        raise ValueError(f"gradient_accumulation_steps must be an integer >= 1; got {gradient_accumulation_steps!r}.")
    optimizer = TorchAdamW(
        learning_rate=schedule,
        beta_1=beta_1,
        beta_2=beta_2,
        epsilon=epsilon,
        weight_decay=weight_decay or None,
        global_clipnorm=max_grad_norm,
        gradient_accumulation_steps=gradient_accumulation_steps if gradient_accumulation_steps != 1 else None,
    )
    optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY_VARIABLE_NAMES))
    return optimizer


def micro_batches(x, y=None, sample_weight=None, gradient_accumulation_steps=1):
    """Split one batch (nested arrays, batch axis first) into
    `gradient_accumulation_steps` equal micro-batches `(x, y, sample_weight)`
    for `train_on_batch` with `trainer_optimizer(...,
    gradient_accumulation_steps=k)`: equal sizes make the average of their
    mean losses' gradients the gradient of the whole batch's mean loss."""
    steps = gradient_accumulation_steps
    if int(steps) != steps or steps < 1:
        raise ValueError(f"gradient_accumulation_steps must be an integer >= 1; got {steps!r}.")
    leaves = [leaf for leaf in keras.tree.flatten((x, y, sample_weight)) if leaf is not None]
    sizes = {len(leaf) for leaf in leaves}
    if len(sizes) != 1:
        raise ValueError(f"micro_batches: the arrays have different batch sizes {sorted(sizes)}.")
    (size,) = sizes
    if size % steps:
        raise ValueError(
            f"gradient_accumulation_steps ({steps}) does not divide the batch size ({size}): "
            "the micro-batches would differ in size and their averaged gradient would not be the batch's."
        )
    width = size // steps

    def part(structure, i):
        if structure is None:
            return None
        return keras.tree.map_structure(lambda leaf: leaf[i * width : (i + 1) * width], structure)

    return [(part(x, i), part(y, i), part(sample_weight, i)) for i in range(steps)]
