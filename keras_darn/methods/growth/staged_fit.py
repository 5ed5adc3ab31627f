"""Staged training: one-epoch `fit` stages that a driver can rebuild between.

The drivers that change a model between epochs (`fit_with_growth`,
`darn_unified`) train in one-epoch `fit` calls. This module holds what they
share:

- `EpochRunner` runs one stage, with a seeded per-epoch data order that
  does not depend on the model (so runs with and without rebuilds see the
  same batches), and merges the stage's history with the model's size;
- `StagedCallbacks` makes the user's callbacks see one training run across
  the stages (`on_train_begin` once, `on_train_end` at the end);
- `probe_arrays` and `probe_loss` pick probe data and measure the compiled
  loss on it, before and after a rebuild.
"""

import warnings

import keras
import numpy as np

from keras_darn.metrics import count_flops
from keras_darn.metrics import count_params


class EpochRunner:
    """Runs one-epoch `fit` stages with a data order that growth does not change."""

    def __init__(self, x, y, shuffle_seed, callbacks, verbose, fit_kwargs):
        self.x, self.y = x, y
        self.arrays = _is_array_like(x) and (y is None or _is_array_like(y))
        self.shuffle_seed = shuffle_seed
        self.callbacks = callbacks
        self.verbose = verbose
        self.fit_kwargs = dict(fit_kwargs)
        self.shuffle = self.fit_kwargs.pop("shuffle", True)

    def run(self, model, epoch, history):
        """Trains `model` for epoch `epoch`; appends to `history` in place."""
        x, y, shuffle = self.x, self.y, self.shuffle
        if self.arrays and self.shuffle_seed is not None:
            order = np.random.default_rng(self.shuffle_seed + epoch).permutation(_length(x))
            x = _take(x, order)
            y = None if y is None else _take(y, order)
            shuffle = False
        stage = model.fit(
            x,
            y,
            epochs=epoch + 1,
            initial_epoch=epoch,
            callbacks=self.callbacks,
            shuffle=shuffle,
            verbose=self.verbose,
            **self.fit_kwargs,
        )
        for key, values in stage.history.items():
            history.setdefault(key, []).extend(values)
        history.setdefault("forward_flops", []).append(count_flops(model))
        history.setdefault("params", []).append(count_params(model))


def probe_loss(model, x, y):
    """The compiled loss of `model` on `(x, y)` in inference mode, or `None`."""
    if x is None or y is None:
        return None
    # Eager, in chunks: `evaluate` would trace a new function for each model.
    total, count = 0.0, _length(x)
    for start in range(0, count, 512):
        index = np.arange(start, min(start + 512, count))
        x_chunk, y_chunk = _take(x, index), _take(y, index)
        y_pred = model(x_chunk, training=False)
        loss = model.compute_loss(x=x_chunk, y=y_chunk, y_pred=y_pred, training=False)
        total += float(keras.ops.convert_to_numpy(loss)) * len(index)
    return total / count


def _is_array_like(data):
    if isinstance(data, (list, tuple)):
        return bool(data) and all(_is_array_like(d) for d in data)
    if isinstance(data, dict):
        return bool(data) and all(_is_array_like(d) for d in data.values())
    return isinstance(data, np.ndarray)


def _length(data):
    if isinstance(data, (list, tuple)):
        return _length(data[0])
    if isinstance(data, dict):
        return _length(next(iter(data.values())))
    return len(data)


def _take(data, index):
    if isinstance(data, (list, tuple)):
        return type(data)(_take(d, index) for d in data)
    if isinstance(data, dict):
        return {k: _take(v, index) for k, v in data.items()}
    return data[index]


def probe_arrays(probe_data, x, y):
    """`(probe_x, probe_y)` from `probe_data`, else the first 512 examples."""
    if probe_data is not None:
        if isinstance(probe_data, tuple) and len(probe_data) == 2:
            return probe_data
        return probe_data, None
    if not (_is_array_like(x) and (y is None or _is_array_like(y))):
        return None, None
    index = np.arange(min(512, _length(x)))
    return _take(x, index), (None if y is None else _take(y, index))


class StagedCallbacks(keras.callbacks.Callback):
    """User callbacks seen as one training run across many `fit` stages."""

    def __init__(self, callbacks):
        super().__init__()
        self.callbacks = list(callbacks)
        self._started = False
        for callback in self.callbacks:
            if isinstance(callback, keras.callbacks.EarlyStopping) and callback.restore_best_weights:
                warnings.warn(
                    "EarlyStopping(restore_best_weights=True) cannot restore weights of a "
                    "model that has since grown; the best weights are restored only when "
                    "no growth happened after them.",
                    stacklevel=3,
                )

    def set_model(self, model):
        super().set_model(model)
        for callback in self.callbacks:
            callback.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        for callback in self.callbacks:
            callback.set_params(params)

    def on_train_begin(self, logs=None):
        if not self._started:
            self._started = True
            self._call("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._last_logs = logs

    def finish(self):
        """Ends the run: `on_train_end` for every user callback."""
        if self._started:
            self._call("on_train_end", getattr(self, "_last_logs", None))

    def _call(self, hook, *args):
        for callback in self.callbacks:
            getattr(callback, hook)(*args)


def _forward(hook):
    def method(self, *args, **kwargs):
        for callback in self.callbacks:
            getattr(callback, hook)(*args, **kwargs)

    method.__name__ = hook
    return method


for _hook in (
    "on_epoch_begin",
    "on_epoch_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_begin",
    "on_test_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_begin",
    "on_predict_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
):
    setattr(StagedCallbacks, _hook, _forward(_hook))
