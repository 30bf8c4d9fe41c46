"""The data pipeline of the tasks' `fit`, `evaluate` and `predict`: raw text
preprocessed batch by batch, generators and datasets checked batch by batch,
and the errors a refused batch raises inside Keras' loops."""

import collections.abc
import contextlib
import re

import keras
import numpy as np


def is_raw(x):
    """True for text (or a tuple of text batches) that needs the preprocessor."""
    if isinstance(x, dict) or x is None:
        return False
    if isinstance(x, tuple):
        return len(x) > 0 and all(is_raw(part) for part in x)
    if isinstance(x, (str, bytes, np.str_, np.bytes_)):
        return True
    if isinstance(x, np.ndarray):
        return x.dtype.kind in "USO"
    if isinstance(x, list):
        return len(x) > 0 and (is_raw(x[0]) or isinstance(x[0], list))
    return False


@contextlib.contextmanager
def batch_errors(model, *data):
    """A batch of `data` (raw text, generators, datasets: checked as they
    come) refused while fit/evaluate/predict run: on jax, Keras has
    detached the variables' values (keep references: jax arrays are
    immutable, no copy) and they are put back; on tensorflow, Keras runs a
    generator inside a tf.data py_func, so our error arrives wrapped in an
    InvalidArgumentError and is raised again as itself.

    Private Keras API: `Variable._value` (jax). No public API reattaches a
    value Keras detached mid-loop (`assign` needs the value to be there);
    tests/test_keras_private_api.py::test_jax_variables_keep_their_value_in_value
    fails on a Keras release that renames it.
    """
    if not any(is_lazy(part) or is_raw(part) for part in data):
        yield
        return
    jax = keras.backend.backend() == "jax"
    optimizer = getattr(model, "optimizer", None)  # absent before compile
    variables = list(model.variables) + list(getattr(optimizer, "variables", None) or []) if jax else []
    saved = [(v, v._value) for v in variables]
    try:
        yield
    except BaseException as error:
        if jax:
            model.jax_state_sync()
            for variable, value in saved:
                if variable._value is None:
                    variable._value = value
        if type(error).__name__ == "InvalidArgumentError":
            ours = re.search(r"^(ValueError|TypeError): (.+)$", str(error), re.MULTILINE)
            if ours:
                raise {"ValueError": ValueError, "TypeError": TypeError}[ours[1]](ours[2]) from None
        raise


class CheckedPyDataset(keras.utils.PyDataset):
    """A `PyDataset` whose every batch passes through `check` (preprocessing
    raw text and validating, per batch)."""

    def __init__(self, dataset, check):
        super().__init__(dataset.workers, dataset.use_multiprocessing, dataset.max_queue_size)
        self.dataset, self.check = dataset, check

    def __len__(self):
        return len(self.dataset)

    @property
    def num_batches(self):
        return self.dataset.num_batches

    def __getitem__(self, index):
        return self.check(self.dataset[index])

    def on_epoch_end(self):
        self.dataset.on_epoch_end()


def is_lazy(x):
    """Data whose batches are made (and checked) only as training consumes them."""
    return isinstance(x, (keras.utils.PyDataset, collections.abc.Iterator)) or is_batch_source(x)


def is_batch_source(x):
    """A re-iterable, sized source of batches that Keras does not take as
    arrays: a `tf.data.Dataset`, a `torch.utils.data.DataLoader`."""
    module = type(x).__module__
    return module.startswith(("tensorflow", "torch.utils.data")) and hasattr(x, "__iter__") and not hasattr(x, "shape")


def host_values(value):
    """A framework tensor as numpy (tf string tensors become bytes); other
    values unchanged."""
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        return value.numpy()
    return value


class IteratedBatches(keras.utils.PyDataset):
    """A re-iterable batch source (tf.data, DataLoader) as a PyDataset of its
    length. Batches are served in the source's own order whatever index Keras
    asks for (Keras may shuffle or peek), restarting the source when it is
    exhausted, so every `len(source)` calls see every batch once and the
    source's own shuffling holds."""

    def __init__(self, source):
        super().__init__()
        self.source, self._iterator = source, None
        try:
            self._length = len(source)
        except TypeError:
            cardinality = int(source.cardinality()) if hasattr(source, "cardinality") else -1
            if cardinality < 0:
                raise ValueError(
                    f"{type(source).__name__}: a data source of unknown length; pass a generator with "
                    "steps_per_epoch instead."
                ) from None
            self._length = cardinality

    def __len__(self):
        return self._length

    def __getitem__(self, index):
        try:
            return next(self._iterator)
        except (StopIteration, TypeError):  # exhausted, or not started
            self._iterator = iter(self.source)
            return next(self._iterator)


def text_lengths(x):
    """Characters per example (segments, and multiple choice's choices,
    summed): the order to group by."""
    if isinstance(x, tuple):
        return sum(text_lengths(part) for part in x)
    return np.array([sum(map(len, e)) if isinstance(e, (list, tuple)) else len(e) for e in x], np.int64)


def unsort(values, order):
    """Rows computed in `order`, put back in the caller's order."""
    restored = np.empty_like(values)
    restored[order] = values
    return restored


def _take(values, indices):
    """`values[indices]` for arrays, lists and tuples of segments."""
    if values is None:
        return None
    if isinstance(values, tuple):
        return tuple(_take(part, indices) for part in values)
    if isinstance(values, dict):
        return {key: _take(part, indices) for key, part in values.items()}
    if isinstance(values, np.ndarray):
        return values[indices]
    return [values[i] for i in indices]


class RawTextBatches(keras.utils.PyDataset):
    """Raw examples (texts, pairs, word lists, QA pairs, with their labels)
    turned into model inputs one batch at a time, so memory does not grow
    with the data and the masked LM masks each batch afresh. With `shuffle`
    the examples are reshuffled every epoch (numpy's global seed, which
    `keras.utils.set_random_seed` sets, makes it reproducible)."""

    def __init__(self, x, y, sample_weight, batch_size, shuffle, prepare):
        super().__init__()
        if isinstance(x, (str, bytes, np.str_, np.bytes_)) or (
            isinstance(x, tuple) and all(isinstance(part, (str, bytes)) for part in x)
        ):
            x, y = ([x] if not isinstance(x, tuple) else tuple([part] for part in x)), (None if y is None else [y])
        self.x, self.y, self.sample_weight, self.prepare = x, y, sample_weight, prepare
        self.count = len(x[0]) if isinstance(x, tuple) else len(x)
        for name, values in (("labels", y), ("sample weights", sample_weight)):
            if values is not None and len(values) != self.count:
                raise ValueError(f"{len(values)} {name} for {self.count} examples.")
        if self.count == 0:
            raise ValueError("no examples: the data is empty.")
        self.batch_size, self.shuffle = int(batch_size), shuffle
        self._rng = np.random.default_rng(np.random.randint(2**31))
        self.order = self._rng.permutation(self.count) if shuffle else np.arange(self.count)

    def __len__(self):
        return -(-self.count // self.batch_size)

    def __getitem__(self, index):
        indices = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        return self.prepare(_take(self.x, indices), _take(self.y, indices), _take(self.sample_weight, indices))

    def on_epoch_end(self):
        if self.shuffle:
            self.order = self._rng.permutation(self.count)
