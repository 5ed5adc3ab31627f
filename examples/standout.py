"""Standout pruning of a CNN's fully connected layer on Fashion-MNIST.

Dutta & Mitra, *A minimal gradient flow method for adaptive node pruning*,
through the front door: `darn.prepare(model, "standout", darn.Target(units=...),
schedule=darn.schedules.Geometric(gamma, every=period))` makes the FC layer a
`StandoutDense` (adaptive dropout: every unit's retention probability is
computed from the layer's input); every `period` epochs its callback masks the
units with the lowest retention over the epoch, with the ratio
`ratio <- ratio + gamma * (1 - ratio)`, until `target` units remain.
`callback.finish()` then returns the smaller model (masked units removed, the
same outputs), which exports to TFLite.

Run (a few minutes on two CPU cores with the defaults):

    python examples/standout.py --num_train=5000 --epochs=8 --target=32
"""

import cli  # noqa: F401  (examples/cli.py: quiet console, own --help; before Keras)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

import keras_darn as darn  # noqa: E402
from keras_darn import datasets  # noqa: E402
from keras_darn.methods.standout import standout_units_to_remove  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "Directory with the Fashion-MNIST IDX files.")
flags.DEFINE_integer("num_train", 5000, "Training examples (stratified subset).")
flags.DEFINE_integer("num_test", 2000, "Test examples (stratified subset).")
flags.DEFINE_integer("width", 512, "Initial width of the Standout FC layer.")
flags.DEFINE_integer("target", 32, "Width at which pruning stops.")
flags.DEFINE_integer("period", 1, "Pruning period P, in epochs.")
flags.DEFINE_float("gamma", 0.5, "Pruning ratio gamma.")
flags.DEFINE_float("alpha", 1.0, "Standout alpha.")
flags.DEFINE_float("beta", 0.0, "Standout beta.")
flags.DEFINE_integer("epochs", 8, "Training epochs.")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.DEFINE_string("tflite", None, "If set, write the shrunk model as TFLite here.")


def build_cnn(width):
    """The paper's CNN (Table 1, left); `darn.prepare` makes its FC layer Standout."""
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, 5, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 5, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(128, 5, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(width, activation="relu", name="standout"),
            layers.Dense(10, activation="softmax", name="classifier"),
        ]
    )


def live_widths(width, schedule, target):
    """Live units after each pruning event of `schedule`, down to `target`."""
    widths, step = [], 0
    while (widths[-1] if widths else width) > target:
        ratio = schedule(step)
        if ratio is not None:
            widths.append(width - standout_units_to_remove(width, ratio, target))
        step += 1
    return widths


def main(argv):
    del argv
    keras.utils.set_random_seed(FLAGS.seed)
    (x_train, y_train), (x_test, y_test) = datasets.load_fashion_mnist(
        FLAGS.data_dir
    )
    x_train, y_train = datasets.subset(x_train, y_train, FLAGS.num_train)
    x_test, y_test = datasets.subset(x_test, y_test, FLAGS.num_test)
    x_train = datasets.to_float_images(x_train)
    x_test = datasets.to_float_images(x_test)

    geometric = darn.schedules.Geometric(FLAGS.gamma, every=FLAGS.period)
    schedule = live_widths(FLAGS.width, geometric, FLAGS.target)
    print(f"Live units after each pruning event: {schedule}")
    if len(schedule) * FLAGS.period > FLAGS.epochs:
        print(
            f"Note: reaching {FLAGS.target} units takes "
            f"{len(schedule) * FLAGS.period} epochs; --epochs={FLAGS.epochs}."
        )

    model, pruning = darn.prepare(
        build_cnn(FLAGS.width),
        "standout",
        darn.Target(units=FLAGS.target),
        schedule=geometric,
        alpha=FLAGS.alpha,
        beta=FLAGS.beta,
        verbose=1,
    )
    model.compile(
        keras.optimizers.SGD(0.01, momentum=0.9),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        x_train,
        y_train,
        batch_size=FLAGS.batch_size,
        epochs=FLAGS.epochs,
        validation_data=(x_test, y_test),
        callbacks=[pruning],
        verbose=2,
    )
    layer = model.get_layer("standout")
    print(f"Live units: {layer.active_units} of {layer.units}")

    result = pruning.finish()
    small = result.model
    difference = np.abs(
        small.predict(x_test, verbose=0) - model.predict(x_test, verbose=0)
    ).max()
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(
        f"Test accuracy {accuracy:.4f}; parameters {model.count_params()} -> "
        f"{small.count_params()} after shrink (FC width "
        f"{small.get_layer('standout').units}); max output difference "
        f"{difference:.2e}"
    )
    print(result.summary())
    if FLAGS.tflite:
        from keras_darn.export import save_tflite
        from keras_darn.export import to_tflite

        with cli.quiet():  # the TFLite converter's native log lines
            save_tflite(to_tflite(small), FLAGS.tflite)
        print(f"Wrote {FLAGS.tflite}")


if __name__ == "__main__":
    cli.run(main)
