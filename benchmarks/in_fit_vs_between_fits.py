"""Benchmark: MobileNetV2 pruned to half its FLOPs during `fit` and between fits, side by side.

One random start of `keras.applications.MobileNetV2` (96x96x3 inputs: the
Fashion-MNIST images resized, the gray channel thrice), the same data and
epochs, pruned by group magnitude (`"magnitude"`, the default) to
`darn.Target(flops=0.5)` two ways:

- **during fit**: `darn.prepare` and its callback (masks on every member of a
  group, events at the end of epochs 0 to `epochs - 2`), then
  `callback.finish()`;
- **between fits**: `darn.resize(..., x=, y=, epochs=)`: the same events, the
  model rebuilt smaller after each, so later epochs train a smaller net.

For each: the FLOPs reached (share of the original), whether the model is
plain Keras, the wall time of training and pruning, the test accuracy (with
the BatchNorm statistics re-estimated on 1,000 training images: a short
recipe's moving averages lag the weights), and for the in-fit arm the
largest difference between the masked model's outputs and the finished
model's, relative to the largest output.

Writes `<output_dir>/<name>.{json,md}` and `<name>.png`. `--name` defaults
to `in_fit_vs_between_fits`. Cost: about 15 minutes with the defaults on 2
CPU cores with nothing else running.

    nice python benchmarks/in_fit_vs_between_fits.py             # the committed result
    python benchmarks/in_fit_vs_between_fits.py --quick          # a smoke run
"""

import time

import harness  # noqa: I001  (quiets TensorFlow before it loads)

from absl import app
from absl import flags

import keras
import numpy as np

import keras_darn as darn

SIZE = 96

harness.define_output_flags("in_fit_vs_between_fits")
harness.define_data_flag()
harness.define_quick_flag()
harness.define_seed_flag()
harness.define_epochs_flag(4)
flags.DEFINE_integer("num_train", 2048, "Training examples.")
flags.DEFINE_integer("num_test", 1000, "Test examples.")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
flags.DEFINE_float("flops", 0.5, "The FLOP target, a share of the original.")
FLAGS = flags.FLAGS


def build():
    keras.utils.set_random_seed(FLAGS.seed)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(SIZE, SIZE, 3), classes=10)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def schedule():
    """Events at the end of epochs 0 .. epochs - 2, the last one on the target."""
    return darn.schedules.Linear(start=0, end=max(0, FLAGS.epochs - 2))


def test_accuracy(model, x, y, x_test, y_test):
    calibrated = darn.rebuild.recalibrate_batch_norm(model, x[:1000])
    return float(np.mean(np.argmax(calibrated.predict(x_test, verbose=0), -1) == y_test))


def plain_keras(model):
    return all(type(layer).__module__.startswith("keras.") for layer in model._flatten_layers())


def run_in_fit(x, y, x_test, y_test, original_flops):
    began = time.perf_counter()
    model, callback = darn.prepare(build(), "magnitude", darn.Target(flops=FLAGS.flops),
                                   schedule=schedule())
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=FLAGS.epochs, batch_size=FLAGS.batch_size, verbose=0,
              callbacks=[callback])
    result = callback.finish()
    seconds = time.perf_counter() - began
    masked = model.predict(x_test[:256], verbose=0)
    finished = result.model.predict(x_test[:256], verbose=0)
    return {
        "seconds": seconds, "flops_share": darn.count_flops(result.model) / original_flops,
        "plain_keras": plain_keras(result.model), "events": len(result.events),
        "accuracy": test_accuracy(result.model, x, y, x_test, y_test),
        "masked_vs_finished": float(np.abs(masked - finished).max() / np.abs(masked).max()),
        "target_met": result.target_check()["met"], "left_out": result.notes,
    }


def run_between_fits(x, y, x_test, y_test, original_flops):
    began = time.perf_counter()
    result = darn.resize(build(), "magnitude", darn.Target(flops=FLAGS.flops), x=x, y=y,
                         epochs=FLAGS.epochs, schedule=schedule(), batch_size=FLAGS.batch_size)
    seconds = time.perf_counter() - began
    return {
        "seconds": seconds, "flops_share": darn.count_flops(result.model) / original_flops,
        "plain_keras": plain_keras(result.model), "events": len(result.events),
        "accuracy": test_accuracy(result.model, x, y, x_test, y_test),
        "target_met": result.target_check()["met"],
    }


def main(argv):
    del argv
    harness.apply_quick({"num_train": 128, "num_test": 64, "epochs": 2})
    dataset, (x, y), (x_test, y_test) = harness.load_images(
        FLAGS.num_train, FLAGS.num_test, seed=FLAGS.seed, data_dir=FLAGS.data_dir)
    x, x_test = harness.as_rgb(x, SIZE), harness.as_rgb(x_test, SIZE)
    original_flops = darn.count_flops(build())
    arms = {"during fit": run_in_fit(x, y, x_test, y_test, original_flops),
            "between fits": run_between_fits(x, y, x_test, y_test, original_flops)}
    for name, values in arms.items():
        print(name, values, flush=True)
    result = {
        "config": {"dataset": dataset, "num_train": FLAGS.num_train, "num_test": FLAGS.num_test,
                   "epochs": FLAGS.epochs, "batch_size": FLAGS.batch_size, "seed": FLAGS.seed,
                   "flops_target": FLAGS.flops, "model": f"MobileNetV2 at {SIZE}x{SIZE}x3",
                   "original_flops": original_flops, "machine": harness.describe_machine()},
        "arms": arms,
    }
    prefix = harness.result_prefix()
    harness.write_json(prefix + ".json", result)
    render(result, prefix)


def render(result, prefix):
    """Writes the markdown table and the plot of `result` under `prefix`."""
    config, arms = result["config"], result["arms"]
    rows = [[name, f"{a['flops_share']:.4f}", "met" if a["target_met"] else "missed",
             "yes" if a["plain_keras"] else "no", f"{a['seconds']:.0f}",
             f"{100 * a['accuracy']:.2f}",
             f"{a['masked_vs_finished']:.1e}" if "masked_vs_finished" in a else None]
            for name, a in arms.items()]
    lines = [
        "# MobileNetV2 pruned during fit and between fits",
        "",
        f"{config['model']}, random start; {config['dataset']}, {config['num_train']} training and "
        f"{config['num_test']} test images resized to 96x96; {config['epochs']} epochs, batch "
        f"{config['batch_size']}; group magnitude to {config['flops_target']} of the FLOPs "
        f"({config['original_flops']:,} per example), events at the end of epochs 0 to "
        f"{config['epochs'] - 2}; {config['machine']}. Accuracy after re-estimating the "
        "BatchNorm statistics on 1,000 training images. The last column: the largest "
        "difference between the masked model's outputs and the finished model's, relative "
        "to the largest output.",
        "",
        *harness.markdown_table(["arm", "FLOPs reached (share)", "target (within 2 %)",
                                 "plain Keras model", "seconds", "test accuracy (%)",
                                 "masked vs finished"], rows),
    ]
    harness.write_markdown(prefix + ".md", lines)
    fig, (ax,) = harness.figure()
    names = list(arms)
    ax.bar(names, [arms[n]["seconds"] for n in names], color=["tab:blue", "tab:orange"])
    for i, name in enumerate(names):
        ax.annotate(f"{100 * arms[name]['accuracy']:.1f} %, {arms[name]['flops_share']:.3f}x FLOPs",
                    (i, arms[name]["seconds"]), ha="center", va="bottom")
    harness.label_axes(ax, "", "seconds (training and pruning)",
                       "MobileNetV2 to half its FLOPs", legend=False)
    harness.save_figure(fig, prefix + ".png")
    print("\n".join(lines))


if __name__ == "__main__":
    app.run(main)
