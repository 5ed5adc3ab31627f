"""Prunes a small CNN during `fit` on the backend it runs under and saves it.

Run as `KERAS_BACKEND=jax python deploy_worker.py OUT_DIR`: writes
`OUT_DIR/pruned.keras` (the finished, plain model), `OUT_DIR/inputs.npy` and
`OUT_DIR/outputs.npy` (its predictions on them, on this backend) and
`OUT_DIR/info.json` (the backend, the parameters before and after).
"""

import json
import pathlib
import sys

import keras
import numpy as np

import keras_darn as darn

L = keras.layers


def main(out):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((128, 12, 12, 1)).astype("float32")
    y = rng.integers(0, 4, 128)
    model = keras.Sequential([
        keras.Input((12, 12, 1)),
        L.Conv2D(12, 3, activation="relu", name="conv1"),
        L.BatchNormalization(name="bn1"),
        L.MaxPooling2D(),
        L.Conv2D(16, 3, activation="relu", name="conv2"),
        L.GlobalAveragePooling2D(),
        L.Dense(24, activation="relu", name="hidden"),
        L.Dense(4, name="logits"),
    ])
    prepared, callback = darn.prepare(model, "magnitude", darn.Target(fraction=0.5))
    prepared.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    prepared.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[callback])
    result = callback.finish()
    result.model.save(out / "pruned.keras")
    inputs = rng.random((16, 12, 12, 1)).astype("float32")
    np.save(out / "inputs.npy", inputs)
    np.save(out / "outputs.npy", keras.ops.convert_to_numpy(result.model(inputs, training=False)))
    (out / "info.json").write_text(json.dumps({
        "backend": keras.backend.backend(),
        "params_before": result.before["params"], "params_after": result.after["params"],
    }))


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]))
