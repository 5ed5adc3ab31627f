"""Standout pruning of a CNN's fully connected layer on Fashion-MNIST.

Dutta & Mitra, *A minimal gradient flow method for adaptive node pruning*:
the FC layer is a `StandoutDense` (adaptive dropout: every unit's retention
probability is computed from the layer's input); every `period` epochs the
`StandoutPruning` callback masks the units with the lowest retention over the
epoch, with the ratio `ratio <- ratio + gamma * (1 - ratio)`, until `target`
units remain. `shrink` then returns a plain smaller model with the same
outputs, which exports to TFLite.

Run (a few minutes on two CPU cores with the defaults):

    python examples/standout.py --num_train=5000 --epochs=8 --target=32
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from keras_darn import datasets  # noqa: E402
from keras_darn.methods.standout.callback import StandoutPruning  # noqa: E402
from keras_darn.methods.standout.callback import (  # noqa: E402
    standout_pruning_schedule,
)
from keras_darn.layers.standout_dense import StandoutDense  # noqa: E402

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


def build_cnn(width, alpha, beta):
    """The paper's CNN (Table 1, left) with a Standout FC layer."""
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
            StandoutDense(
                width, alpha=alpha, beta=beta, activation="relu", name="standout"
            ),
            layers.Dense(10, activation="softmax", name="classifier"),
        ]
    )


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

    schedule = standout_pruning_schedule(FLAGS.width, FLAGS.gamma, FLAGS.target)
    print(f"Live units after each pruning event: {schedule}")
    if len(schedule) * FLAGS.period > FLAGS.epochs:
        print(
            f"Note: reaching {FLAGS.target} units takes "
            f"{len(schedule) * FLAGS.period} epochs; --epochs={FLAGS.epochs}."
        )

    model = build_cnn(FLAGS.width, FLAGS.alpha, FLAGS.beta)
    model.compile(
        keras.optimizers.SGD(0.01, momentum=0.9),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    pruning = StandoutPruning(
        pruning_period=FLAGS.period,
        gamma=FLAGS.gamma,
        target_units=FLAGS.target,
        verbose=1,
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

    from keras_darn import rebuild

    small = rebuild.shrink(model)
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
    if FLAGS.tflite:
        from keras_darn.export import save_tflite
        from keras_darn.export import to_tflite

        save_tflite(to_tflite(small), FLAGS.tflite)
        print(f"Wrote {FLAGS.tflite}")


if __name__ == "__main__":
    app.run(main)
