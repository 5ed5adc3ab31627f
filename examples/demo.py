"""keras_darn in one run: prune an over-wide CNN during `fit`, shrink it, export it to TFLite.

1. Builds a deliberately over-wide CNN and trains two copies of it from the
   same initial weights, on the same batches, for the same `--epochs`:
   the unpruned baseline, and one prepared by the front door,
   `darn.prepare(model, method, darn.Target(fraction=...))`, which switches
   off units during `fit` (at the end of epochs `--prune_start` to
   `--prune_end`) with the method keras_darn recommends.
2. `callback.finish()` hands back the plain, smaller Keras model; it is
   exported to TFLite.
3. As a control, trains the small architecture (the pruned model's widths)
   from a random start for the same epochs on the same batches: does pruning
   beat simply training the small net?
4. Prints a table (parameters, FLOPs, test accuracy, TFLite size and latency)
   of the baseline, the small model and the control, and writes into `--output_dir`:
   `results.md`, `results.json`, `small_model.tflite` and `training.png`
   (validation accuracy and live parameters after every epoch).

Data: Fashion-MNIST (a stratified subset), or scikit-learn's 8x8 digits when
Fashion-MNIST cannot be found.

    bash scripts/demo.sh                               # sets up .venv, then runs this
    python examples/demo.py --epochs=6 --fraction=0.8 --output_dir=demo_wider
"""

import inspect
import json
import os
import time

import cli  # noqa: F401  (examples/cli.py: quiet console, own --help; before Keras)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

import keras_darn as darn  # noqa: E402
from keras_darn import datasets  # noqa: E402
from keras_darn.export import to_tflite  # noqa: E402
from keras_darn.export import tflite_predict  # noqa: E402
from keras_darn.metrics import measure_latency  # noqa: E402

FALLBACK_METHOD = "weight_l1"

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "method", None,
    "Method of darn.prepare. Defaults to the one the front door recommends "
    f"(darn.prepare's default; '{FALLBACK_METHOD}' where it has none).")
flags.DEFINE_float("fraction", 0.75, "Fraction of the hidden units (conv filters, dense units) the method removes.")
flags.DEFINE_enum("dataset", "auto", ["auto", "fashion_mnist", "digits"],
                  "Dataset; `auto` uses Fashion-MNIST when it can be found, else digits.")
flags.DEFINE_string("data_dir", None, "Directory with the Fashion-MNIST IDX files.")
flags.DEFINE_integer("train_samples", 10000,
                     "Training examples (a stratified subset; all if fewer); 1,000 of them are "
                     "held out for validation.")
flags.DEFINE_integer("epochs", 6, "Training epochs of both the baseline and the pruned model.")
flags.DEFINE_integer("prune_start", 1, "First epoch (0-based) at whose end units are removed.")
flags.DEFINE_integer("prune_end", 3, "Last epoch at whose end units are removed.")
flags.DEFINE_integer("batch_size", 128, "Batch size.")
flags.DEFINE_integer("latency_repeats", 200, "Timed TFLite calls (batch of 1, 1 thread).")
flags.DEFINE_string("output_dir", "demo_output", "Where the table, the .tflite file and the plot go.")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.DEFINE_bool("distill", False,
                  "Also learn from a teacher's outputs while pruning "
                  "(darn.prepare(..., distill=...): a keras.distillation.Distiller).")
flags.DEFINE_enum("teacher", "given", ["given", "baseline"],
                  "With --distill, the teacher: 'given', the model handed to darn.prepare (here the "
                  "untrained network, distill=True), or 'baseline', the trained baseline.")

VALIDATION_EXAMPLES = 1000  # held out of the training subset
DATASET_NAMES = {"fashion_mnist": "Fashion-MNIST", "digits": "digits"}


def recommended_method():
    """The method `darn.prepare` uses when none is named, else `FALLBACK_METHOD`."""
    default = inspect.signature(darn.prepare).parameters["method"].default
    if isinstance(default, str):
        return default
    return FALLBACK_METHOD


def load_data():
    """Returns `(name, train, validation, test)`, each `(x, y)` with float images."""
    name = FLAGS.dataset
    if name in ("auto", "fashion_mnist"):
        try:
            train, test = datasets.load_fashion_mnist(FLAGS.data_dir)
            name = "fashion_mnist"
        except datasets.DatasetNotFoundError as error:
            if name == "fashion_mnist":
                raise
            print(f"Fashion-MNIST cannot be found ({str(error).splitlines()[0]}): "
                  "using scikit-learn's digits.")
            name = "digits"
    if name == "digits":
        train, test = datasets.load_digits()
    x, y = datasets.subset(*train, FLAGS.train_samples, seed=FLAGS.seed)
    x = datasets.to_float_images(x)
    held_out = min(VALIDATION_EXAMPLES, len(x) // 5)
    order = np.random.default_rng(FLAGS.seed).permutation(len(x))
    x, y = x[order], y[order]
    return (name, (x[held_out:], y[held_out:]), (x[:held_out], y[:held_out]),
            (datasets.to_float_images(test[0]), test[1]))


def build_over_wide_cnn(input_shape, num_classes):
    """A CNN far wider than the task needs, of plain Keras layers."""
    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv1"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(256, activation="relu", name="dense"),
            keras.layers.Dense(num_classes, activation="softmax", name="classifier"),
        ],
        name="over_wide_cnn",
    )


class Tracker(keras.callbacks.Callback):
    """After every epoch (and its pruning step, if any): validation accuracy and live parameters.

    Runs after the method's callback, so it sees the units that epoch switched
    off; it writes both figures into the epoch's logs, which Keras prints.
    """

    def __init__(self, validation, prunes):
        super().__init__()
        self.validation = validation
        self.prunes = prunes

    def _live_params(self):
        model = getattr(self.model, "student", self.model)  # a Distiller trains its student
        return darn.count_params(darn.shrink(model) if self.prunes else model)

    def on_train_begin(self, logs=None):
        self.accuracy, self.params = [], [self._live_params()]

    def on_epoch_end(self, epoch, logs=None):
        x, y = self.validation
        predictions = self.model.predict(x, batch_size=512, verbose=0)
        self.accuracy.append(float(np.mean(np.argmax(predictions, axis=-1) == y)))
        self.params.append(self._live_params())
        if logs is not None:
            logs["val_accuracy"] = self.accuracy[-1]
            logs["live_params"] = self.params[-1]


def train(model, data, callbacks):
    """Compiles and trains `model` on the same batches for every call; returns its curves."""
    keras.utils.set_random_seed(FLAGS.seed)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    (x, y), validation = data
    tracker = Tracker(validation, prunes=bool(callbacks))
    model.fit(x, y, epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
              callbacks=[*callbacks, tracker], verbose=2)
    return {"val_accuracy": tracker.accuracy, "live_params": tracker.params}


def describe(model, tflite_model, x_test, y_test):
    """The row values of the results table for one plain Keras model and its TFLite file."""
    with cli.quiet():
        latency = measure_latency(tflite_model, x_test[:1], repeats=FLAGS.latency_repeats,
                                  num_threads=1)
        tflite_outputs = tflite_predict(tflite_model, x_test[:256])
    predictions = model.predict(x_test, batch_size=512, verbose=0)
    return {
        "params": darn.count_params(model),
        "flops": darn.count_flops(model),
        "test_accuracy": float(np.mean(np.argmax(predictions, axis=-1) == y_test)),
        "tflite_bytes": len(tflite_model),
        "tflite_latency_median_ms": latency["median"] * 1e3,
        "tflite_max_abs_diff_vs_keras": float(np.abs(tflite_outputs - predictions[:256]).max()),
    }


def export(model):
    with cli.quiet():
        return to_tflite(model)


ROWS = [
    ("Parameters", "params", "{:,}".format),
    ("FLOPs per example", "flops", "{:,}".format),
    ("Test accuracy", "test_accuracy", "{:.4f}".format),
    ("TFLite size (KiB)", "tflite_bytes", lambda b: f"{b / 1024:,.1f}"),
    ("TFLite latency, median (ms, batch 1, 1 thread)", "tflite_latency_median_ms",
     "{:.3f}".format),
]


def markdown_table(baseline, small, scratch, method):
    distilled = ", distilled" if FLAGS.distill else ""
    lines = [f"| | baseline, unpruned | pruned by '{method}'{distilled} | same widths, trained from scratch "
             "| pruned / baseline |",
             "|---|---:|---:|---:|---:|"]
    for label, key, render in ROWS:
        ratio = small[key] / baseline[key] if baseline[key] else float("nan")
        lines.append(f"| {label} | {render(baseline[key])} | {render(small[key])} | "
                     f"{render(scratch[key])} | {ratio:.3f} |")
    return "\n".join(lines)


def plot(path, curves, method, name, num_validation):
    """Validation accuracy and live parameters against the epochs trained, both runs."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.6), layout="constrained")
    accuracy_axes, params_axes = figure.subplots(1, 2)
    styles = {"baseline": ("unpruned baseline", "tab:gray", "s"),
              "pruned": (f"pruned by '{method}'", "tab:blue", "o"),
              "scratch": ("same widths, from scratch", "tab:green", "^")}
    for key, (label, color, marker) in styles.items():
        curve = curves[key]
        epochs = np.arange(1, len(curve["val_accuracy"]) + 1)
        accuracy_axes.plot(epochs, 100 * np.array(curve["val_accuracy"]), marker=marker,
                           color=color, label=label)
        params_axes.plot(np.arange(len(curve["live_params"])),
                         np.array(curve["live_params"]) / 1e3, marker=marker, color=color,
                         label=label)
    for axes in (accuracy_axes, params_axes):
        for i, epoch in enumerate(range(FLAGS.prune_start, FLAGS.prune_end + 1)):
            axes.axvline(epoch + 1, color="tab:orange", linestyle="--", linewidth=1,
                         label="pruning step (end of the epoch)" if i == 0 else None)
        axes.set_xlabel("epochs trained")
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.grid(True, alpha=0.3)
    figure.legend(*accuracy_axes.get_legend_handles_labels(), loc="outside lower center", ncols=3)
    accuracy_axes.set_ylabel("validation accuracy (%)")
    accuracy_axes.set_title(f"Accuracy on {num_validation:,} held-out {DATASET_NAMES[name]} "
                            "images, after each epoch", fontsize=10)
    params_axes.set_ylabel("live parameters (thousands)")
    params_axes.set_ylim(bottom=0)
    params_axes.set_title("Parameters left once switched-off units are removed", fontsize=10)
    figure.savefig(path, dpi=110)


def check_flags():
    if not 0.0 < FLAGS.fraction < 1.0:
        raise ValueError("Received an invalid value for `--fraction`, expected a number in (0, 1). "
                         f"Received: fraction={FLAGS.fraction}")
    if not 0 <= FLAGS.prune_start <= FLAGS.prune_end < FLAGS.epochs - 1:
        raise ValueError(
            "Expected 0 <= --prune_start <= --prune_end < --epochs - 1 (at least one epoch of "
            "training after the last removal). Received: "
            f"prune_start={FLAGS.prune_start}, prune_end={FLAGS.prune_end}, epochs={FLAGS.epochs}")


def main(argv):
    del argv
    check_flags()
    start = time.time()
    method = FLAGS.method or recommended_method()
    name, train_data, validation, (x_test, y_test) = load_data()
    num_classes = int(max(train_data[1].max(), y_test.max())) + 1
    print(f"Method: '{method}', through darn.prepare(model, '{method}', "
          f"darn.Target(fraction={FLAGS.fraction})): removes {FLAGS.fraction:.0%} of the hidden "
          f"units, at the end of epochs {FLAGS.prune_start}-{FLAGS.prune_end} (0-based).")
    print(f"Data: {DATASET_NAMES[name]}, {len(train_data[0]):,} training, {len(validation[0]):,} validation and "
          f"{len(x_test):,} test images of {x_train_shape(train_data)}; both models train "
          f"{FLAGS.epochs} epochs from the same initial weights.")

    keras.utils.set_random_seed(FLAGS.seed)
    model = build_over_wide_cnn(train_data[0].shape[1:], num_classes)
    baseline = keras.models.clone_model(model)
    baseline.set_weights(model.get_weights())

    print(f"\nBaseline, unpruned ({darn.count_params(baseline):,} parameters):")
    curves = {"baseline": train(baseline, (train_data, validation), [])}

    prepared, callback = darn.prepare(
        model, method, darn.Target(fraction=FLAGS.fraction), validation_data=validation,
        schedule=darn.schedules.Linear(start=FLAGS.prune_start, end=FLAGS.prune_end),
        distill=(baseline if FLAGS.teacher == "baseline" else True) if FLAGS.distill else None)
    print(f"\nPruned by '{callback.method.name}'"
          + (f", distilled (teacher: {FLAGS.teacher}):" if FLAGS.distill else ":"))
    curves["pruned"] = train(prepared, (train_data, validation), [callback])
    prepared = getattr(prepared, "student", prepared)  # the model pruned, also when distilled
    result = callback.finish()
    small = result.model

    # The control: the small architecture, from a random start, for as long.
    keras.utils.set_random_seed(FLAGS.seed + 1)
    scratch = keras.models.clone_model(small)
    print(f"\nSame widths, trained from scratch ({darn.count_params(scratch):,} parameters):")
    curves["scratch"] = train(scratch, (train_data, validation), [])

    baseline_tflite, small_tflite = export(baseline), export(small)
    before = describe(baseline, baseline_tflite, x_test, y_test)
    after = describe(small, small_tflite, x_test, y_test)
    control = describe(scratch, export(scratch), x_test, y_test)
    shrink_difference = float(np.abs(small.predict(x_test[:512], verbose=0)
                                     - prepared.predict(x_test[:512], verbose=0)).max())

    table = markdown_table(before, after, control, callback.method.name)
    print(f"\nOver-wide CNN on {DATASET_NAMES[name]}, {FLAGS.epochs} epochs each:\n")
    print(table)
    print(f"\nWidths {_widths(result.before)} -> {_widths(result.after)} "
          f"({', '.join(result.before['widths'])}). Small model vs "
          f"trained masked model: max |output difference| {shrink_difference:.1e}; TFLite vs "
          f"Keras: {after['tflite_max_abs_diff_vs_keras']:.1e}.")

    os.makedirs(FLAGS.output_dir, exist_ok=True)
    paths = {key: os.path.join(FLAGS.output_dir, file) for key, file in (
        ("md", "results.md"), ("json", "results.json"), ("tflite", "small_model.tflite"),
        ("png", "training.png"))}
    with open(paths["tflite"], "wb") as f:
        f.write(small_tflite)
    plot(paths["png"], curves, callback.method.name, name, len(validation[0]))
    results = {
        "method": callback.method.name,
        "distilled": FLAGS.distill,
        "teacher": FLAGS.teacher if FLAGS.distill else None,
        "target_fraction": FLAGS.fraction,
        "pruning_epochs": list(range(FLAGS.prune_start, FLAGS.prune_end + 1)),
        "dataset": name,
        "train_examples": len(train_data[0]),
        "validation_examples": len(validation[0]),
        "test_examples": len(x_test),
        "epochs": FLAGS.epochs,
        "widths_before": result.before["widths"],
        "widths_after": result.after["widths"],
        "shrink_max_abs_output_difference": shrink_difference,
        "baseline": before,
        "pruned": after,
        "from_scratch": control,
        "curves": curves,
        "seconds": time.time() - start,
    }
    with open(paths["json"], "w") as f:
        json.dump(results, f, indent=2)
    with open(paths["md"], "w") as f:
        f.write(f"Over-wide CNN on {DATASET_NAMES[name]} ({len(train_data[0]):,} training images), "
                f"baseline and pruned model trained {FLAGS.epochs} epochs each; '{callback.method.name}' removed "
                f"{FLAGS.fraction:.0%} of the hidden units during training; widths "
                f"{_widths(result.before)} -> {_widths(result.after)}; the control trains those widths "
                f"from a random start for as long (examples/demo.py)."
                f"\n\n{table}\n")
    print("\nWrote " + ", ".join(paths.values()) + f" ({time.time() - start:.0f} s in all).")


def _widths(figures):
    return "/".join(str(width) for width in figures["widths"].values())


def x_train_shape(train_data):
    return "x".join(str(d) for d in train_data[0].shape[1:])


if __name__ == "__main__":
    cli.run(main)
