"""Scores of the data-driven criteria on fixed models, under the backend of `KERAS_BACKEND`.

Run by `test_criteria_backends.py` once per backend: `python criteria_worker.py OUT.json`.
The weights and data are drawn with numpy, so every backend sees the same
numbers; the results go to `OUT.json` for the test to compare.
"""

import json
import sys

import numpy as np

# Before any other import: is TensorFlow loaded by `import keras_darn` itself?
import keras_darn as darn  # noqa: E402

TENSORFLOW_AFTER_IMPORT = "tensorflow" in sys.modules

import keras  # noqa: E402

from keras_darn.methods.growth.grow import grow_units  # noqa: E402
from keras_darn.methods.growth.sources import choose_sources  # noqa: E402
from keras_darn.methods.growth.sources import source_criterion  # noqa: E402

CRITERIA = ("variance", "l1", "correlation", "taylor1", "taylor2", "brute_force")


def _fixed(model, seed):
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        value = rng.normal(size=variable.shape) * 0.5
        if "variance" in variable.path:  # BatchNormalization's moving variance
            value = np.abs(value) + 0.5
        variable.assign(value.astype("float32"))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def mlp():
    return _fixed(keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(8, activation="relu", name="h1"),
        keras.layers.Dense(5, activation="tanh", name="h2"),
        keras.layers.Dense(3, name="out"),
    ]), seed=1)


def cnn():
    return _fixed(keras.Sequential([
        keras.Input((6, 6, 2)),
        keras.layers.Conv2D(4, 3, activation="relu", name="c1"),
        keras.layers.BatchNormalization(name="bn"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(5, 1, activation="relu", name="c2"),
        keras.layers.Flatten(),
        keras.layers.Dense(3, name="out"),
    ]), seed=2)


def _lists(scores):
    return {key: np.asarray(value, dtype=np.float64).tolist() for key, value in scores.items()}


def scores_of(model, x, y):
    result = {name: _lists(darn.criteria.get(name)(model, x, y)) for name in CRITERIA}
    probed = darn.criteria.ProbedModel(model)
    probed.remove(probed.keys[0], [0, 1])
    result["evaluate"] = list(probed.evaluate(x, y, batch_size=16))
    return result


def growth(model, x, y):
    sources = choose_sources(source_criterion("net2net", None), model, x, y, {"h1": 2})
    grown = grow_units(model, {"h1": 2}, init="gradmax", gradient_data=(x, y), seed=0)
    return {
        "sources": [list(s) for s in sources["h1"]],
        "gradmax": [keras.ops.convert_to_numpy(w).tolist() for w in grown.weights],
    }


def prepare_and_fit(model, x, y):
    pruned, callback = darn.prepare(
        model, "variance", darn.Target(fraction=0.5), validation_data=(x, y)
    )
    pruned.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    pruned.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[callback])
    small = callback.finish().model
    return {
        "params_before": int(model.count_params()),
        "params_after": int(small.count_params()),
        "layer_types": sorted({type(layer).__module__.split(".")[0] for layer in small.layers}),
        "widths": [layer.units for layer in small.layers if hasattr(layer, "units")],
    }


def main(path):
    rng = np.random.default_rng(0)
    x_mlp = rng.normal(size=(40, 6)).astype("float32")
    x_cnn = rng.normal(size=(24, 6, 6, 2)).astype("float32")
    y_mlp, y_cnn = rng.integers(0, 3, 40), rng.integers(0, 3, 24)
    result = {
        "backend": keras.backend.backend(),
        "tensorflow_after_import": TENSORFLOW_AFTER_IMPORT,
        "mlp": scores_of(mlp(), x_mlp, y_mlp),
        "cnn": scores_of(cnn(), x_cnn, y_cnn),
        "growth": growth(mlp(), x_mlp, y_mlp),
        "prepare": prepare_and_fit(mlp(), x_mlp, y_mlp),
    }
    with open(path, "w") as file:
        json.dump(result, file)


if __name__ == "__main__":
    main(sys.argv[1])
