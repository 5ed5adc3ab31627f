"""One worker of the multi-worker tests, or the single-process reference run.

    TF_CONFIG='{"cluster": {"worker": ["127.0.0.1:P0", "127.0.0.1:P1"]},
                "task": {"type": "worker", "index": I}}' \
        python tests/distributed/worker.py --out DIR --scenarios nodedrop,standout

With `TF_CONFIG` set, the worker trains under
`tf.distribute.MultiWorkerMirroredStrategy`; without it, the same models
train in one process without a strategy (the reference run: same global
batch, same data order). For every scenario it writes `<scenario>.npz`
(final weights, optimizer variables, the unit masks after every epoch) and
`<scenario>.json` (events, history) into `--out`; the chief alone keeps
a checkpoint, and writes the `shrink`-ed model and its SavedModel export,
into `--out/chief_files` (the other workers save their checkpoints into a
temporary directory they delete: saving reads variables that every worker
must read together).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.threading.set_inter_op_parallelism_threads(1)
tf.config.threading.set_intra_op_parallelism_threads(1)

import keras  # noqa: E402

keras.config.disable_traceback_filtering()

import keras_darn as darn  # noqa: E402
from keras_darn.rebuild.unit_masks import masked_plan  # noqa: E402
from keras_darn.methods.growth import fit_with_growth  # noqa: E402

GLOBAL_BATCH = 32
NUM_EXAMPLES = 256
SCR = darn.layers.soft_clamped_relu


class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """`MultiWorkerMirroredStrategy` with the `reduce` that Keras 3's `fit` expects.

    Keras 3 `fit` reduces its first data batch, an `(x, y)` tuple, with
    `strategy.reduce` to build the model, and every step's scalar logs with
    `axis=0`; the TensorFlow strategy reduces single values only, and a
    scalar has no axis 0 (keras-team/keras#20585). This reduces each value
    of a nest, scalars across workers only.
    """

    def reduce(self, reduce_op, value, axis=None):
        parent = super()

        def reduce_one(v):
            local = v.values[0] if isinstance(v, tf.distribute.DistributedValues) else v
            scalar = local.shape.rank == 0
            return parent.reduce(reduce_op, v, None if scalar else axis)

        return tf.nest.map_structure(reduce_one, value)


def digits():
    x, y = darn.datasets.load_digits(split=False)
    x = x[:NUM_EXAMPLES].reshape(NUM_EXAMPLES, 64).astype("float32") / 255.0
    return x, y[:NUM_EXAMPLES].astype("int32")


def mlp(activation):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((64,))
    hidden = keras.layers.Dense(16, activation=activation, name="h1")(inputs)
    hidden = keras.layers.Dense(12, activation=activation, name="h2")(hidden)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="out")(hidden))


def compile_model(model):
    model.compile(keras.optimizers.Adam(0.02), "sparse_categorical_crossentropy")


class MaskRecorder(keras.callbacks.Callback):
    """The unit masks of every masked layer after every epoch (listed after the method)."""

    def __init__(self):
        super().__init__()
        self.masks = {}
        self.first_epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.first_epoch is None:
            self.first_epoch = epoch  # > 0 when BackupAndRestore resumed the run

    def on_epoch_end(self, epoch, logs=None):
        # Criterion pruning masks every member of a group (`masked_plan`);
        # NodeDrop and Standout mask in their own layers.
        masked = masked_plan(self.model)
        for layer in self.model.layers:
            if hasattr(layer, "get_unit_mask"):
                self.masks.setdefault(layer.name, []).append(layer.get_unit_mask())
            elif isinstance(layer, keras.layers.Dense):
                mask = np.ones(layer.units, "float32")
                mask[masked.get(layer.name, [])] = 0
                self.masks.setdefault(layer.name, []).append(mask)


class SlowDown(keras.callbacks.Callback):
    """Sleeps after every step, so that a test can kill a worker mid-training."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def on_train_batch_end(self, batch, logs=None):
        time.sleep(self.seconds)


def prepared(scenario):
    """`(model, front-door callback)` of a scenario that acts during fit."""
    if scenario.startswith("nodedrop"):
        return darn.prepare(mlp(SCR), "nodedrop", lam=2e-3, input_range=(0, 1))
    if scenario == "standout":
        return darn.prepare(mlp("relu"), "standout", darn.Target(units=4),
                            schedule=darn.schedules.Geometric(0.5))
    if scenario == "pruning":
        return darn.prepare(mlp("relu"), "weight_l1", darn.Target(fraction=0.5),
                            schedule=darn.schedules.Linear(start=1, end=2))
    raise ValueError(f"Unknown scenario. Received: scenario={scenario!r}")


def run_during_fit(scenario, strategy, chief, args, x, y):
    with strategy.scope():
        model, callback = prepared(scenario)
        compile_model(model)
    recorder = MaskRecorder()
    callbacks = [callback, recorder]
    if args.backup:
        # Keras' BackupAndRestore writes on every worker: each gets its own directory.
        callbacks.append(keras.callbacks.BackupAndRestore(os.path.join(args.backup, args.name)))
    if args.delay:
        callbacks.append(SlowDown(args.delay))
    # Saving the training model reads variables that sync across workers (the
    # loss tracker's), so every worker saves; only the chief's file is kept.
    files = os.path.join(args.out, "chief_files")
    checkpoint_dir = files if chief else tempfile.mkdtemp()
    os.makedirs(checkpoint_dir, exist_ok=True)
    callbacks.append(keras.callbacks.ModelCheckpoint(
        os.path.join(checkpoint_dir, f"{scenario}.weights.h5"), save_weights_only=True))
    model.fit(x, y, epochs=args.epochs, batch_size=GLOBAL_BATCH, shuffle=False, verbose=0,
              callbacks=callbacks)
    if not chief:
        shutil.rmtree(checkpoint_dir)
    # Every worker computes the same things (a collective op on one worker
    # only would stall the others); the chief alone writes them.
    small = callback.finish().model
    gap = np.max(np.abs(np.asarray(small(x[:64], training=False)) - np.asarray(model(x[:64], training=False))))
    if chief:
        small.save(os.path.join(files, f"{scenario}_small.keras"))
        small.export(os.path.join(files, f"{scenario}_saved_model"), verbose=False)
    extra = {"small_gap": float(gap), "first_epoch": recorder.first_epoch}
    return model, callback.events, callback.history, recorder.masks, extra


def run_growth(strategy, args, x, y):
    with strategy.scope():
        model = mlp("relu")
        compile_model(model)
    result = fit_with_growth(
        model, x, y, epochs=args.epochs, layers=["h1"],
        schedule=darn.schedules.Constant(0.5, start=1), max_width=24, seed=0,
        batch_size=GLOBAL_BATCH, shuffle=False,
    )
    events = [
        {"step": e["step"], "layer": e["layer"], "units": e["units"], "widths_after": e["widths_after"]}
        for e in result.events
    ]
    iterations = int(np.asarray(result.model.optimizer.iterations))
    return result.model, events, {"loss": result.history["loss"]}, {}, {"iterations": iterations}


def save(out, scenario, model, events, history, masks, extra):
    arrays = {f"weight_{i}": np.asarray(v) for i, v in enumerate(model.weights)}
    arrays.update({f"optimizer_{i}": np.asarray(v) for i, v in enumerate(model.optimizer.variables)})
    for name, per_epoch in masks.items():
        arrays[f"masks_{name}"] = np.stack(per_epoch)
    np.savez(os.path.join(out, f"{scenario}.npz"), **arrays)
    with open(os.path.join(out, f"{scenario}.json"), "w") as f:
        json.dump({"events": events, "history": history, **extra}, f, default=float)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--scenarios", default="nodedrop")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--backup", default=None, help="BackupAndRestore base directory")
    parser.add_argument("--name", default="reference", help="this worker's backup subdirectory")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to sleep after each step")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    if "TF_CONFIG" in os.environ:
        strategy = MultiWorkerMirroredStrategy()
        resolver = strategy.cluster_resolver
        chief = resolver.task_id == 0
    else:
        strategy, chief = tf.distribute.get_strategy(), True
    x, y = digits()
    for scenario in args.scenarios.split(","):
        if scenario == "growth":
            outcome = run_growth(strategy, args, x, y)
        else:
            outcome = run_during_fit(scenario, strategy, chief, args, x, y)
        save(args.out, scenario, *outcome)
    with open(os.path.join(args.out, "done"), "w") as f:
        f.write("ok")


if __name__ == "__main__":
    main(sys.argv[1:])
