"""Peer: tensorflow-model-optimization's `prune_low_magnitude` on the paper's MLP.

Runs in its OWN process and virtualenv: tfmot needs Keras 2 (`tf_keras`,
`TF_USE_LEGACY_KERAS=1`) and is never imported by keras_darn.
`benchmarks/adaptive_rate.py` calls it with the same data split and the same
MLP (Dense 80-60-40 ReLU, softmax 10, Adam 1e-3), and compares at the same
accuracy. For every target sparsity the dense base model (trained here with
the same recipe as ours) is wrapped with `prune_low_magnitude` (every Dense
kernel, a `PolynomialDecay` schedule from 0 to the target over all but the
last fine-tuning epoch, pruning every 1/4 epoch), fine-tuned with
`UpdatePruningStep`, stripped with `strip_pruning` and converted to a float
TFLite model.

It imports only the data-free parts of `benchmarks/harness/` (result
writing), never keras_darn.

Set-up (once; any directory outside the checkout will do):

    python3 -m venv ~/.venvs/tfmot
    ~/.venvs/tfmot/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0 \\
        tensorflow-model-optimization==0.8.1

Run (normally by `adaptive_rate.py --peer_python=~/.venvs/tfmot/bin/python`):

    TF_USE_LEGACY_KERAS=1 ~/.venvs/tfmot/bin/python benchmarks/peer_tfmot.py \\
        --data=split.npz --output=peer.json --tflite_dir=peer_tflite
"""

import gzip
import json
import os
import time

os.environ["TF_USE_LEGACY_KERAS"] = "1"

import harness  # noqa: E402  (benchmarks/harness/: quiets TensorFlow, writes the result)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("data", None, "npz with x_train, y_train, x_test, y_test.")
flags.DEFINE_string("output", None, "JSON file to write.")
flags.DEFINE_string("tflite_dir", None, "Directory for the .tflite files.")
flags.DEFINE_list("sparsities", ["0.5", "0.6", "0.7", "0.8", "0.85", "0.9"], "Target sparsities.")
flags.DEFINE_list("widths", ["80", "60", "40"], "Hidden widths.")
flags.DEFINE_integer("base_epochs", 40, "Epochs of dense training.")
flags.DEFINE_integer("fine_tune_epochs", 10, "Epochs of pruning + fine-tuning.")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
flags.DEFINE_float("fine_tune_learning_rate", None,
                   "Adam learning rate of the pruning + fine-tuning fit (default: --learning_rate).")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.mark_flags_as_required(["data", "output", "tflite_dir"])


def build_mlp(inputs, widths, classes):
    keras = tf.keras
    layers = [keras.Input((inputs,))]
    layers += [keras.layers.Dense(w, activation="relu") for w in widths]
    layers.append(keras.layers.Dense(classes, activation="softmax"))
    return keras.Sequential(layers)


def compile_model(model, learning_rate):
    model.compile(
        tf.keras.optimizers.Adam(learning_rate),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )


def accuracy(model, x, y):
    return float(np.mean(model.predict(x, verbose=0, batch_size=1024).argmax(-1) == y))


def kernel_counts(model):
    kernels = [w.numpy() for layer in model.layers for w in layer.weights if "kernel" in w.name]
    return int(sum(np.count_nonzero(k) for k in kernels)), int(sum(k.size for k in kernels))


def main(argv):
    del argv
    tf.keras.utils.set_random_seed(FLAGS.seed)
    data = np.load(FLAGS.data)
    x_train, y_train, x_test, y_test = (data[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    os.makedirs(FLAGS.tflite_dir, exist_ok=True)
    classes = int(max(y_train.max(), y_test.max())) + 1
    widths = [int(w) for w in FLAGS.widths]
    start = time.time()
    base = build_mlp(x_train.shape[1], widths, classes)
    compile_model(base, FLAGS.learning_rate)
    base.fit(x_train, y_train, epochs=FLAGS.base_epochs, batch_size=FLAGS.batch_size, verbose=0)
    base_accuracy = accuracy(base, x_test, y_test)
    base_weights = base.get_weights()
    steps_per_epoch = int(np.ceil(len(x_train) / FLAGS.batch_size))
    end_step = steps_per_epoch * max(FLAGS.fine_tune_epochs - 1, 1)
    runs = []
    for target in [float(s) for s in FLAGS.sparsities]:
        schedule = tfmot.sparsity.keras.PolynomialDecay(
            initial_sparsity=0.0, final_sparsity=target, begin_step=0, end_step=end_step,
            frequency=max(steps_per_epoch // 4, 1),
        )
        dense = tf.keras.models.clone_model(base)
        dense.set_weights(base_weights)
        pruned = tfmot.sparsity.keras.prune_low_magnitude(dense, pruning_schedule=schedule)
        compile_model(pruned, FLAGS.fine_tune_learning_rate or FLAGS.learning_rate)
        run_start = time.time()
        pruned.fit(
            x_train, y_train, epochs=FLAGS.fine_tune_epochs, batch_size=FLAGS.batch_size,
            verbose=0, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
        )
        stripped = tfmot.sparsity.keras.strip_pruning(pruned)
        nonzero, total = kernel_counts(stripped)
        tflite = tf.lite.TFLiteConverter.from_keras_model(stripped).convert()
        path = os.path.join(FLAGS.tflite_dir, f"tfmot_sparsity_{target:.2f}.tflite")
        with open(path, "wb") as f:
            f.write(tflite)
        runs.append(
            {
                "target_sparsity": target,
                "accuracy": accuracy(stripped, x_test, y_test),
                "nonzero_weights": nonzero,
                "total_weights": total,
                "tflite_path": path,
                "tflite_bytes": len(tflite),
                "tflite_gzip_bytes": len(gzip.compress(tflite, 9)),
                "fine_tune_seconds": time.time() - run_start,
            }
        )
        print(json.dumps(runs[-1]), flush=True)
    result = {
        "peer": "tensorflow-model-optimization prune_low_magnitude",
        "versions": {
            "tensorflow": tf.__version__,
            "tf_keras": tf.keras.__version__ if hasattr(tf.keras, "__version__") else None,
            "tensorflow_model_optimization": tfmot.__version__,
        },
        "base_accuracy": base_accuracy,
        "base_epochs": FLAGS.base_epochs,
        "fine_tune_epochs": FLAGS.fine_tune_epochs,
        "runs": runs,
        "seconds": time.time() - start,
    }
    harness.write_json(FLAGS.output, result)


if __name__ == "__main__":
    app.run(main)
