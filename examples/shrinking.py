"""Prune a trained network one neuron at a time, without retraining.

*The Incredible Shrinking Neural Network*: a 1-hidden-layer network of 100
sigmoid units (squared-error loss) is trained on scikit-learn's digits; then
Iterative Re-ranking removes, one at a time, the unit whose removal hurts the
validation loss least (brute force, or the 1st/2nd-order Taylor estimate),
until the validation accuracy would drop more than `max_drop`. The Rebuilder
returns the smaller plain model; the pruning curve is written as a PNG.

Run (about a minute on two CPU cores):

    python examples/shrinking.py --criterion=brute_force --max_drop=0.01
"""

import cli  # noqa: F401  (examples/cli.py: quiet console, own --help; before Keras)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

import keras_darn as darn  # noqa: E402
from keras_darn import datasets  # noqa: E402
from keras_darn import plots  # noqa: E402
from keras_darn.metrics import count_params  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_enum("criterion", "brute_force", ["brute_force", "taylor1", "taylor2"],
                  "Ranking criterion.")
flags.DEFINE_integer("units", 100, "Hidden sigmoid units.")
flags.DEFINE_integer("epochs", 300, "Training epochs.")
flags.DEFINE_float("max_drop", 0.01, "Largest validation accuracy drop allowed.")
flags.DEFINE_string("plot", "shrinking_curve.png", "PNG of the pruning curve ('' for none).")
flags.DEFINE_integer("seed", 0, "Random seed.")


def main(argv):
    del argv
    keras.utils.set_random_seed(FLAGS.seed)
    (x_train, y_train), (x_test, y_test) = datasets.load_digits()
    x_train, x_test = datasets.to_float_vectors(x_train), datasets.to_float_vectors(x_test)
    y_train, y_test = np.eye(10, dtype="float32")[y_train], np.eye(10, dtype="float32")[y_test]
    x_val, y_val = x_train[:270], y_train[:270]
    x_train, y_train = x_train[270:], y_train[270:]

    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(FLAGS.units, activation="sigmoid", name="hidden"),
        keras.layers.Dense(10, activation="sigmoid", name="out"),
    ])
    model.compile(keras.optimizers.Adam(3e-3), "mse")
    model.fit(x_train, y_train, epochs=FLAGS.epochs, batch_size=32, verbose=0)

    result = darn.resize(
        model, FLAGS.criterion, darn.Target(max_accuracy_drop=FLAGS.max_drop),
        validation_data=(x_val, y_val), eval_data=(x_test, y_test),
    )
    small, history = result.model, result.history
    first, last = history["steps"][0], history["steps"][-1]
    print(f"Removed {last['units_removed']} of {FLAGS.units} units "
          f"(stopped by {history['stopped_by']}).")
    print(f"Validation accuracy {first['accuracy']:.4f} -> {last['accuracy']:.4f}; "
          f"test accuracy {first['eval_accuracy']:.4f} -> {last['eval_accuracy']:.4f}")
    print(f"Parameters {count_params(model)} -> {count_params(small)} "
          f"(hidden width {small.get_layer('hidden').units})")
    if FLAGS.plot:
        plots.plot_pruning_curves({FLAGS.criterion: history}, FLAGS.plot, use_eval=True,
                                  title="Iterative re-ranking on digits (test split)")
        print(f"Wrote {FLAGS.plot}")


if __name__ == "__main__":
    cli.run(main)
