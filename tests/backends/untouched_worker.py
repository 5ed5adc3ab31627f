"""Every registered method leaves the model given untouched, under the backend of `KERAS_BACKEND`.

Run by `test_input_model_untouched.py` under JAX: `python untouched_worker.py OUT.json`.
Under JAX, `fit` (and `predict`, `evaluate`) donate the arrays of the model
they run: a copy whose variables hold the very arrays of the model given
(a variable assigned another variable, a reused layer) deletes that model's
weights the first time the copy trains. For every registered method this
runs the front door on a small trained model (`darn.resize` for a method
that acts between fits, `darn.prepare` + `fit` + `finish` for one that acts
during fit) and checks that the model given

- shares no array with the copies (no common device buffer),
- predicts what it predicted before, with the same weights,
- still trains (its optimizer's arrays are its own),

and that the result still predicts what it did once the model given has
trained. Each case's error (a traceback) or `None` goes to `OUT.json`.
"""

import json
import sys
import traceback

import keras
import numpy as np

import keras_darn as darn
from support.digits_mlp import digits
from support.digits_mlp import digits_mlp

FRACTION = darn.Target(fraction=0.2)
ACCURACY = darn.Target(max_accuracy_drop=0.05)
LINEAR = darn.schedules.Linear(start=0, end=1)
GROWTH = (darn.Target(units=32), {"epochs": 1, "schedule": darn.schedules.Constant(0.5)})

# Between fits, by name (else by class name): (target, resize keyword arguments).
BETWEEN_FITS = {
    "CriterionMethod": (FRACTION, {"epochs": 1}),
    "DARN": (ACCURACY, {"epochs": 1, "max_retrains": 1}),
    "WeightMagnitude": (ACCURACY, {"epochs": 1, "max_steps": 2}),
    "AdaptiveRate": (ACCURACY, {"epochs": 1, "max_steps": 2}),
    "Growth": GROWTH,
    "Unified": (darn.Target(params=3000), {"epochs": 1}),
}
# During fit, by name (else by class name): (target, prepare keyword arguments).
DURING_FIT = {
    "CriterionMethod": (FRACTION, {"schedule": LINEAR}),
    "magnitude": (darn.Target(params=0.5), {"schedule": LINEAR}),
    "bn_scale": (darn.Target(flops=0.5), {"schedule": LINEAR}),
    "nodedrop": (None, {"lam": 1e-2, "input_range": (0, 1)}),
    "nodedrop_bn": (None, {"lam": 1e-2, "input_range": (0, 1), "batch_size": 32}),
    "standout": (darn.Target(units=8), {"schedule": darn.schedules.Geometric(0.5)}),
}
BATCH_NORM = ("bn_scale", "nodedrop_bn")


def _trained_mlp(x, y, batch_norm):
    model = digits_mlp(batch_norm)
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    return model


def _recipe(recipes, name, method):
    recipe = recipes.get(name, recipes.get(type(method).__name__))
    if recipe is None:
        raise KeyError(f"no recipe for method '{name}' ({type(method).__name__}) in "
                       "untouched_worker.py: add one")
    return recipe


def _variables(model):
    optimizer = getattr(model, "optimizer", None)
    return list(model.variables) + (list(optimizer.variables) if optimizer is not None else [])


def _buffers(model):
    """The device buffers of a model's (and its optimizer's) variables, on JAX."""
    if keras.backend.backend() != "jax":
        return set()
    return {v.value.unsafe_buffer_pointer() for v in _variables(model)}


def _check(model, copies, before, weights, data, others=()):
    """`copies`: the models handed back (predicting on); `others`: more to share nothing."""
    x, y, x_val, _ = data
    shared = {m.name for m in list(copies) + list(others) if _buffers(m) & _buffers(model)}
    assert not shared, f"the model given shares arrays with {sorted(shared)}"
    np.testing.assert_array_equal(model.predict(x_val, verbose=0), before)
    for old, new in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(old, new)
    outputs = [m.predict(x_val, verbose=0) for m in copies]
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    for copy, expected in zip(copies, outputs):
        np.testing.assert_array_equal(copy.predict(x_val, verbose=0), expected)


def run_case(name, mode, data):
    x, y, x_val, y_val = data
    method = darn.methods.get(name)
    model = _trained_mlp(x, y, batch_norm=name in BATCH_NORM)
    before = model.predict(x_val, verbose=0)
    weights = [np.array(w, copy=True) for w in model.get_weights()]
    if mode == "resize":
        target, kwargs = _recipe(BETWEEN_FITS, name, method)
        result = darn.resize(model, name, target, x=x, y=y, validation_data=(x_val, y_val),
                             **kwargs)
        copies, others = [result.model], ()
    else:
        target, kwargs = _recipe(DURING_FIT, name, method)
        if mode == "distill":
            kwargs = {**kwargs, "distill": True}
        pruned, callback = darn.prepare(model, name, target, validation_data=(x_val, y_val),
                                        **kwargs)
        pruned.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
        pruned.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[callback])
        trained = pruned.student if hasattr(pruned, "student") else pruned
        copies, others = [trained, callback.finish().model], [pruned]  # a Distiller: its teacher
    _check(model, copies, before, weights, data, others)


def cases():
    """`(key, method name, mode)` for every registered method, and one distillation."""
    found = []
    for name in darn.methods.names():
        method = darn.methods.get(name)
        if method.acts_between_fits:
            found.append((f"{name}/resize", name, "resize"))
        if method.acts_during_fit:
            found.append((f"{name}/prepare", name, "prepare"))
    return found + [("magnitude/prepare+distill", "magnitude", "distill")]


def main(path):
    data = digits()
    errors = {}
    for key, name, mode in cases():
        try:
            run_case(name, mode, data)
            errors[key] = None
        except Exception:  # every case reports, one failure does not hide the others
            errors[key] = traceback.format_exc()[-3000:]
    with open(path, "w") as file:
        json.dump({"backend": keras.backend.backend(), "errors": errors}, file)


if __name__ == "__main__":
    main(sys.argv[1])
