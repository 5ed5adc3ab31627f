"""Peer: tfmot's sparse (unstructured) versions of a keras.applications model, as .tflite files.

Runs in its OWN process and virtual environment (Keras 2: `tf_keras`,
`TF_USE_LEGACY_KERAS=1`; never imported by keras_darn). For every sparsity
the model (random weights, `weights=None`) is wrapped with
`prune_low_magnitude` (`ConstantSparsity`), one training step with a zero
learning rate applies the masks (`UpdatePruningStep`) without changing a
weight, `strip_pruning` gives the plain sparse model, and it is converted to
TFLite float and int8 as `benchmarks/tflite_latency.py` converts its own,
which then times every file with the same interpreter code. The float model
is also converted with `tf.lite.Optimize.EXPERIMENTAL_SPARSITY`, tfmot's own
route to XNNPACK's sparse inference (weights stored in a sparse format).

Set-up (once): `bash benchmarks/peers/setup_tfmot.sh`
(or see `benchmarks/peer_tfmot.py`). Run (normally by tflite_latency.py):

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
flags.DEFINE_bool("sparse_format", True,
                  "Also convert the float model with tf.lite.Optimize.EXPERIMENTAL_SPARSITY "
                  "(weights stored sparse, for XNNPACK's sparse inference).")
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


def convert(model, quantization, images, sparse_format=False):
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if sparse_format:  # tfmot's path to XNNPACK sparse inference: weights stored sparse
        converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
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
        zeros = int(sum(k.size for k in kernels)) - nonzero
        variants = [(q, False) for q in FLAGS.quantizations]
        if FLAGS.sparse_format and "float" in FLAGS.quantizations:
            variants.append(("float", True))
        for quantization, sparse_format in variants:
            suffix = "_sparse_format" if sparse_format else ""
            path = os.path.join(
                FLAGS.tflite_dir,
                f"tfmot_{FLAGS.architecture}_{sparsity:.2f}_{quantization}{suffix}.tflite")
            with open(path, "wb") as f:
                f.write(convert(model, quantization, images, sparse_format))
            name = f"tfmot {int(100 * sparsity)} % sparse"
            models.append({"name": name + (", EXPERIMENTAL_SPARSITY" if sparse_format else ""),
                           "sparsity": sparsity, "sparse_format": sparse_format,
                           "quantization": quantization, "params": int(model.count_params()),
                           "nonzero_kernel_weights": nonzero,
                           "nonzero_params": int(model.count_params()) - zeros, "path": path})
    with open(FLAGS.output, "w") as f:
        json.dump({"tensorflow": tf.__version__, "models": models}, f, indent=1)


if __name__ == "__main__":
    app.run(main)
