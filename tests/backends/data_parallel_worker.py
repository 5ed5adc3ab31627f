"""Prunes during `fit` under JAX, on one device or data-parallel over several.

Run as `KERAS_BACKEND=jax python data_parallel_worker.py OUT.json DEVICES`
(with `XLA_FLAGS=--xla_force_host_platform_device_count=DEVICES` for host
devices): with more than one device, training runs under
`keras.distribution.DataParallel`. Writes the events of the pruning callback
(which units went, when) and the finished model's widths.
"""

import json
import sys

import keras
import numpy as np

import keras_darn as darn

L = keras.layers


def main(out, devices):
    found = keras.distribution.list_devices()
    if len(found) < devices:
        raise SystemExit(f"Asked for {devices} devices, found {found}")
    if devices > 1:
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=found[:devices]))
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((256, 20)).astype("float32")
    y = rng.integers(0, 3, 256)
    model = keras.Sequential([
        keras.Input((20,)),
        L.Dense(32, activation="relu", name="hidden1"),
        L.Dense(24, activation="relu", name="hidden2"),
        L.Dense(3, name="logits"),
    ])
    prepared, callback = darn.prepare(model, "magnitude", darn.Target(fraction=0.5))
    prepared.compile(keras.optimizers.SGD(0.05),
                     keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    prepared.fit(x, y, epochs=3, batch_size=64, shuffle=False, verbose=0, callbacks=[callback])
    result = callback.finish()
    with open(out, "w") as f:
        json.dump({
            "devices": len(found[:devices]),
            # The devices holding a trained weight: all of them under DataParallel.
            "weight_devices": len(prepared.trainable_weights[0].value.sharding.device_set),
            "events": [{k: e[k] for k in ("step", "layer", "units")} for e in result.events],
            "widths": result.after["widths"],
        }, f)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
