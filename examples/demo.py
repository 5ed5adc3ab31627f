"""keras_darn in one run: train an over-wide CNN, switch units off, shrink, export.

1. Trains a deliberately over-wide CNN (`PrunableConv2D`/`PrunableDense` layers) on
   Fashion-MNIST, or on scikit-learn's 8x8 digits when Fashion-MNIST cannot be had.
2. Switches off, in every prunable layer, the `--prune_fraction` of units whose filters
   (incoming kernel weights) have the lowest L1 norm, through `layer.set_unit_mask`.
   This simple criterion stands in for keras_darn's real methods.
3. Fine-tunes briefly with the masks in place (masked units stay exactly zero).
4. `keras_darn.shrink` turns the masked model into a plain, smaller Keras model with the
   same outputs; both models are exported to float TFLite.
5. Prints a before/after table (parameters, FLOPs, test accuracy, TFLite size and
   latency) and writes it as JSON and markdown under `--output_dir`.

Run it with `bash scripts/demo.sh` (sets up .venv first), or directly:

    python examples/demo.py --epochs=3 --train_samples=10000 --prune_fraction=0.5
"""

import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

import keras_darn as darn  # noqa: E402
from keras_darn import datasets  # noqa: E402
from keras_darn.export import to_tflite  # noqa: E402
from keras_darn.export import tflite_predict  # noqa: E402
from keras_darn.layers import PrunableConv2D  # noqa: E402
from keras_darn.layers import PrunableDense  # noqa: E402
from keras_darn.layers import from_prunable  # noqa: E402
from keras_darn.metrics import measure_latency  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_enum(
    "dataset",
    "auto",
    ["auto", "fashion_mnist", "digits"],
    "Dataset; `auto` uses Fashion-MNIST when it can be found, else digits.",
)
flags.DEFINE_string("data_dir", None, "Directory with the Fashion-MNIST IDX files.")
flags.DEFINE_integer(
    "train_samples", 10000, "Training examples (a stratified subset; all if fewer)."
)
flags.DEFINE_integer("epochs", 3, "Training epochs before pruning.")
flags.DEFINE_integer("finetune_epochs", 1, "Fine-tuning epochs after pruning.")
flags.DEFINE_float(
    "prune_fraction", 0.5, "Fraction of units switched off in each prunable layer."
)
flags.DEFINE_integer("batch_size", 128, "Batch size.")
flags.DEFINE_integer("latency_repeats", 200, "Timed TFLite calls (batch of 1).")
flags.DEFINE_string("output_dir", "demo_output", "Where results.json/.md go.")
flags.DEFINE_integer("seed", 0, "Random seed.")


def load_data():
    """Returns `(name, (x_train, y_train), (x_test, y_test))` as float images."""
    name = FLAGS.dataset
    if name in ("auto", "fashion_mnist"):
        try:
            train, test = datasets.load_fashion_mnist(FLAGS.data_dir)
            name = "fashion_mnist"
        except datasets.DatasetNotFoundError as error:
            if name == "fashion_mnist":
                raise
            print(f"{error}\n\n>>> Fashion-MNIST cannot be had: using scikit-learn's digits.\n")
            name = "digits"
    if name == "digits":
        train, test = datasets.load_digits()
    x_train, y_train = datasets.subset(*train, FLAGS.train_samples, seed=FLAGS.seed)
    x_train = datasets.to_float_images(x_train)
    return name, (x_train, y_train), (datasets.to_float_images(test[0]), test[1])


def build_over_wide_cnn(input_shape, num_classes):
    """A CNN far wider than the task needs, with prunable hidden layers."""
    return keras.Sequential(
        [
            keras.Input(input_shape),
            PrunableConv2D(64, 3, padding="same", activation="relu", name="conv1"),
            keras.layers.MaxPooling2D(2),
            PrunableConv2D(64, 3, padding="same", activation="relu", name="conv2"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            PrunableDense(256, activation="relu", name="dense"),
            keras.layers.Dense(num_classes, activation="softmax", name="classifier"),
        ],
        name="over_wide_cnn",
    )


def switch_off_lowest_l1_units(model, fraction):
    """Masks, per prunable layer, the `fraction` of units with the smallest filter L1 norm.

    Returns `{layer name: (active units, total units)}`.
    """
    widths = {}
    for layer in model.layers:
        if not isinstance(layer, (PrunableConv2D, PrunableDense)):
            continue
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        l1_norms = np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)
        mask = np.ones(kernel.shape[-1], dtype="float32")
        mask[np.argsort(l1_norms)[: int(fraction * kernel.shape[-1])]] = 0.0
        layer.set_unit_mask(mask)
        widths[layer.name] = (layer.active_units, kernel.shape[-1])
    return widths


def accuracy(model, x, y):
    predictions = model.predict(x, batch_size=512, verbose=0)
    return float(np.mean(np.argmax(predictions, axis=-1) == y))


def describe(model, x_test, y_test):
    """The row values of the results table for one plain Keras model."""
    tflite_model = to_tflite(model)
    latency = measure_latency(
        tflite_model, x_test[:1], repeats=FLAGS.latency_repeats, num_threads=1
    )
    tflite_difference = np.abs(
        tflite_predict(tflite_model, x_test[:256])
        - model.predict(x_test[:256], verbose=0)
    ).max()
    return {
        "params": darn.count_params(model),
        "flops": darn.count_flops(model),
        "test_accuracy": accuracy(model, x_test, y_test),
        "tflite_bytes": len(tflite_model),
        "tflite_latency_median_ms": latency["median"] * 1e3,
        "tflite_max_abs_diff_vs_keras": float(tflite_difference),
    }


ROWS = [
    ("Parameters", "params", "{:,}".format),
    ("FLOPs per example", "flops", "{:,}".format),
    ("Test accuracy", "test_accuracy", "{:.4f}".format),
    ("TFLite size (KiB)", "tflite_bytes", lambda b: f"{b / 1024:,.1f}"),
    ("TFLite latency, median (ms, batch 1, 1 thread)", "tflite_latency_median_ms", "{:.3f}".format),
]


def markdown_table(before, after):
    lines = ["| | before | after | after / before |", "|---|---:|---:|---:|"]
    for label, key, render in ROWS:
        ratio = after[key] / before[key] if before[key] else float("nan")
        lines.append(f"| {label} | {render(before[key])} | {render(after[key])} | {ratio:.3f} |")
    return "\n".join(lines)


def main(argv):
    del argv
    if not 0.0 <= FLAGS.prune_fraction < 1.0:
        raise ValueError(
            "Received an invalid value for `--prune_fraction`, expected a number "
            f"in [0, 1). Received: prune_fraction={FLAGS.prune_fraction}"
        )
    start = time.time()
    logging.set_verbosity(logging.WARNING)  # TFLite conversion logs at INFO.
    keras.utils.set_random_seed(FLAGS.seed)
    name, (x_train, y_train), (x_test, y_test) = load_data()
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    print(
        f"Dataset: {name}; {len(x_train)} training examples (stratified subset), "
        f"{len(x_test)} test examples, images {x_train.shape[1:]}; "
        f"{FLAGS.epochs} epochs, then {FLAGS.finetune_epochs} fine-tuning epoch(s) "
        f"after switching off {FLAGS.prune_fraction:.0%} of each prunable layer's units."
    )

    model = build_over_wide_cnn(x_train.shape[1:], num_classes)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    fit_args = dict(batch_size=FLAGS.batch_size, verbose=2)
    model.fit(x_train, y_train, epochs=FLAGS.epochs, **fit_args)

    # The trained over-wide model as plain Dense/Conv2D layers: the fair "before".
    before = describe(from_prunable(model), x_test, y_test)

    widths = switch_off_lowest_l1_units(model, FLAGS.prune_fraction)
    masked_accuracy = accuracy(model, x_test, y_test)
    print(f"Active units {widths}; test accuracy right after masking: {masked_accuracy:.4f}")
    if FLAGS.finetune_epochs:
        model.fit(x_train, y_train, epochs=FLAGS.finetune_epochs, **fit_args)

    small = darn.shrink(model)
    shrink_difference = float(
        np.abs(small.predict(x_test, verbose=0) - model.predict(x_test, verbose=0)).max()
    )
    after = describe(small, x_test, y_test)

    table = markdown_table(before, after)
    print(f"\nOver-wide CNN on {name}, before and after switching off units and shrinking:\n")
    print(table)
    print(
        f"\nshrink(masked model) vs masked model: max |output difference| = "
        f"{shrink_difference:.2e}; TFLite vs Keras: {before['tflite_max_abs_diff_vs_keras']:.2e} "
        f"(before), {after['tflite_max_abs_diff_vs_keras']:.2e} (after)."
    )

    os.makedirs(FLAGS.output_dir, exist_ok=True)
    results = {
        "dataset": name,
        "train_examples": len(x_train),
        "test_examples": len(x_test),
        "epochs": FLAGS.epochs,
        "finetune_epochs": FLAGS.finetune_epochs,
        "prune_fraction": FLAGS.prune_fraction,
        "criterion": "lowest L1 norm of each unit's incoming kernel weights, per layer",
        "active_units": {k: {"active": a, "total": t} for k, (a, t) in widths.items()},
        "test_accuracy_after_masking_before_finetune": masked_accuracy,
        "shrink_max_abs_output_difference": shrink_difference,
        "before": before,
        "after": after,
        "seconds": time.time() - start,
    }
    with open(os.path.join(FLAGS.output_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(FLAGS.output_dir, "results.md"), "w") as f:
        f.write(
            f"Over-wide CNN on {name} ({len(x_train)} training examples, "
            f"{FLAGS.epochs}+{FLAGS.finetune_epochs} epochs, "
            f"{FLAGS.prune_fraction:.0%} of units switched off by filter L1 norm); "
            f"written by examples/demo.py.\n\n{table}\n"
        )
    print(
        f"\nWrote {FLAGS.output_dir}/results.json and results.md "
        f"({time.time() - start:.0f} s in all)."
    )


if __name__ == "__main__":
    app.run(main)
