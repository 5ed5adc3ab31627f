"""Connection pruning with the adaptive pruning rate, an auxiliary layer, and energy.

Esfandiarpoor et al., *Simplified neural network based on auxiliary layer and
adaptive pruning rate*: the paper's MLP 80-60-40 is trained on scikit-learn's
8x8 digits; the adaptive rate (Algorithm 1: PR from 0.1 in steps of 0.05,
raised while a trial prune loses at most the allowed accuracy) prunes
connections and retrains while the accuracy stays within `--max_drop` points
of the trained network. An auxiliary fully connected layer is then inserted
and the network pruned again. Every step is printed (the paper's Table II),
dead units are switched off and `shrink` returns the plain smaller model,
whose energy per inference is estimated from the paper's 45 nm costs; it is
optionally written as TFLite.

Run (about a minute on two CPU cores):

    python examples/adaptive_rate.py --max_drop=1.0 --aux_units=40
    python examples/adaptive_rate.py --mode=std --factorized
    python examples/adaptive_rate.py --on_failure=lower_rate    # retry failed steps at a lower rate
"""

import cli  # noqa: F401  (examples/cli.py: quiet console, own --help; before Keras)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

from keras_darn import datasets  # noqa: E402
from keras_darn.export import save_tflite  # noqa: E402
from keras_darn.export import to_tflite  # noqa: E402
from keras_darn.layers import to_prunable  # noqa: E402
from keras_darn.methods.connection import accuracy_evaluator  # noqa: E402
from keras_darn.methods.connection import dead_units  # noqa: E402
from keras_darn.methods.connection import insert_auxiliary_layer  # noqa: E402
from keras_darn.methods.connection import mask_disconnected_units  # noqa: E402
from keras_darn.methods.connection import remaining_weights  # noqa: E402
from keras_darn.metrics import count_params  # noqa: E402
from keras_darn.metrics import energy  # noqa: E402
from keras_darn.rebuild import shrink  # noqa: E402
from keras_darn.resizing import Target  # noqa: E402
from keras_darn.resizing import resize  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_float("max_drop", 1.0, "Allowed accuracy drop, in points.")
flags.DEFINE_integer("epochs", 40, "Epochs of the initial training.")
flags.DEFINE_integer("retrain_epochs", 2, "Epochs of every retraining.")
flags.DEFINE_integer("aux_units", 40, "Units of the auxiliary layer (0: none).")
flags.DEFINE_enum("mode", "fraction", ["fraction", "threshold", "std"],
                  "What the pruning rate means: a fraction of the live weights, a magnitude, or a "
                  "multiple of each layer's weight std (Han et al.).")
flags.DEFINE_bool("factorized", False,
                  "Start the auxiliary layer and the layer after it from a truncated SVD of that "
                  "layer's kernel instead of fresh weights (not in the paper).")
flags.DEFINE_enum("on_failure", "stop", ["stop", "lower_rate"],
                  "After a step ends below the floor: stop (the paper's Algorithm 1) or retry it "
                  "with a lower rate (not in the paper).")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.DEFINE_string("tflite", None, "If set, write the final shrunk model as TFLite here.")


def print_history(title, result):
    history = result.history
    print(f"\n{title}: base accuracy {history['base_accuracy']:.4f}, floor "
          f"{history['accuracy_floor']:.4f}")
    print("step  rate  remaining  accuracy  mean|w|  accepted")
    for s in history["steps"]:
        print(
            f"{s['step']:4d}  {s['rate']:4.2f}  {s['remaining_weights']:9d}  {s['accuracy']:8.4f}  "
            f"{s['mean_abs_weight']:7.4f}  {s['accepted']}"
        )


def adaptive(model, drop, train, test, **options):
    """Algorithm 1 through the front door, on a copy; the masked model comes back."""
    return resize(
        model, "adaptive_rate", Target(max_accuracy_drop=drop), x=train[0], y=train[1],
        validation_data=test, epochs=FLAGS.retrain_epochs, mode=FLAGS.mode,
        on_failure=FLAGS.on_failure, batch_size=64, shrink=False, **options,
    )


def main(argv):
    del argv
    keras.utils.set_random_seed(FLAGS.seed)
    (x_train, y_train), (x_test, y_test) = datasets.load_digits()
    x_train, x_test = datasets.to_float_vectors(x_train), datasets.to_float_vectors(x_test)

    plain = keras.Sequential(
        [keras.Input((64,))]
        + [keras.layers.Dense(w, activation="relu", name=f"h{w}") for w in (80, 60, 40)]
        + [keras.layers.Dense(10, activation="softmax", name="out")]
    )
    model = to_prunable(plain, connection_mask=True)  # kernel masks on every Dense
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=FLAGS.epochs, batch_size=64, verbose=0)

    train, test = (x_train, y_train), (x_test, y_test)
    evaluate = accuracy_evaluator(x_test, y_test)
    drop = FLAGS.max_drop / 100
    result = adaptive(model, drop, train, test)
    print_history("Adaptive pruning rate", result)
    base = result.history["base_accuracy"]
    model = result.model  # the pruned copy, with its connection masks

    if FLAGS.aux_units:
        model = insert_auxiliary_layer(
            model, after="h80", units=FLAGS.aux_units, factorized=FLAGS.factorized
        )
        print(f"\nAccuracy right after inserting {FLAGS.aux_units} units: {evaluate(model):.4f}")
        model.fit(x_train, y_train, epochs=10, batch_size=64, verbose=0)
        aux = adaptive(model, drop, train, test, base_accuracy=base)
        print_history(f"After an auxiliary layer of {FLAGS.aux_units} units", aux)
        model = aux.model

    dead = dead_units(model)
    print("\nUnits dead on the input side: ", {k: len(v["incoming"]) for k, v in dead.items()})
    print("Units dead on the output side:", {k: len(v["outgoing"]) for k, v in dead.items()})
    mask_disconnected_units(model)
    small = shrink(model)
    change = np.abs(small.predict(x_test, verbose=0) - model.predict(x_test, verbose=0)).max()
    print(
        f"shrink: widths {[l.units for l in small.layers]}, params {count_params(model)} -> "
        f"{count_params(small)}, live weights {remaining_weights(small)}, "
        f"largest output change {change:.1e}"
    )
    for dtype in ("float32", "float16", "int8"):
        print(f"energy per inference ({dtype}): {energy.estimate_energy(small, dtype=dtype) / 1000:.2f} nJ")
    if FLAGS.tflite:
        with cli.quiet():  # the TFLite converter's native log lines
            save_tflite(to_tflite(small), FLAGS.tflite)
        print(f"wrote {FLAGS.tflite}")


if __name__ == "__main__":
    cli.run(main)
