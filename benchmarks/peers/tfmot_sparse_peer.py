"""Peer: tfmot's sparse (unstructured) versions of a keras.applications model, as .tflite files.

Runs in its OWN process and virtual environment (Keras 2: `tf_keras`,
`TF_USE_LEGACY_KERAS=1`; never imported by keras_darn). For every sparsity
the model (random weights, `weights=None`) is wrapped with
`prune_low_magnitude` (`ConstantSparsity`), one training step with a zero
learning rate applies the masks (`UpdatePruningStep`) without changing a
weight, `strip_pruning` gives the plain sparse model, and it is converted to
TFLite float and int8 as `benchmarks/tflite_latency.py` converts its own,
which then times every file with the same interpreter code.

Set-up (once): see `benchmarks/peer_tfmot.py`. Run (normally by tflite_latency.py):

    TF_USE_LEGACY_KERAS=1 ~/.venvs/tfmot/bin/python benchmarks/peers/tfmot_sparse_peer.py \\
        --architecture=MobileNetV2 --output=tfmot.json --tflite_dir=tfmot_tflite
"""

import json
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("architecture", "MobileNetV2", "keras.applications class name.")
flags.DEFINE_integer("input_size", 224, "Image side.")
flags.DEFINE_list("sparsities", ["0.5", "0.75"], "Target sparsities.")
flags.DEFINE_list("quantizations", ["float", "int8"], "TFLite variants.")
flags.DEFINE_integer("calibration", 8, "Random images for int8 calibration.")
flags.DEFINE_string("output", None, "JSON file to write.")
flags.DEFINE_string("tflite_dir", None, "Directory for the .tflite files.")
flags.mark_flags_as_required(["output", "tflite_dir"])


def sparse_model(sparsity, images):
    tf.keras.utils.set_random_seed(0)
    model = getattr(tf.keras.applications, FLAGS.architecture)(
        weights=None, input_shape=(FLAGS.input_size, FLAGS.input_size, 3), classes=1000)
    schedule = tfmot.sparsity.keras.ConstantSparsity(sparsity, begin_step=0, frequency=1)
    wrapped = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    wrapped.compile(tf.keras.optimizers.SGD(0.0), "sparse_categorical_crossentropy")
    wrapped.fit(images[:1], np.zeros(1, dtype="int64"), epochs=1, verbose=0,
                callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    return tfmot.sparsity.keras.strip_pruning(wrapped)


def convert(model, quantization, images):
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantization == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image[None]] for image in images)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def main(argv):
    del argv
    os.makedirs(FLAGS.tflite_dir, exist_ok=True)
    images = np.random.default_rng(0).uniform(
        -1, 1, size=(FLAGS.calibration, FLAGS.input_size, FLAGS.input_size, 3)).astype("float32")
    models = []
    for sparsity in (float(s) for s in FLAGS.sparsities):
        model = sparse_model(sparsity, images)
        kernels = [w.numpy() for w in model.weights if "kernel" in w.name]
        nonzero = int(sum(np.count_nonzero(k) for k in kernels))
        for quantization in FLAGS.quantizations:
            path = os.path.join(FLAGS.tflite_dir,
                                f"tfmot_{FLAGS.architecture}_{sparsity:.2f}_{quantization}.tflite")
            with open(path, "wb") as f:
                f.write(convert(model, quantization, images))
            models.append({"name": f"tfmot {int(100 * sparsity)} % sparse",
                           "quantization": quantization, "params": int(model.count_params()),
                           "nonzero_kernel_weights": nonzero, "flops": None, "path": path})
    with open(FLAGS.output, "w") as f:
        json.dump({"tensorflow": tf.__version__, "models": models}, f, indent=1)


if __name__ == "__main__":
    app.run(main)
