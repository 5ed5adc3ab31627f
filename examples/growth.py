"""Growing an MLP on Fashion-MNIST, and DARN's add-and-remove loop.

`--mode=schedule`: start at `--start_width` units per hidden layer and double
(`--rate=1.0`) after every epoch from `--start_epoch` until `--max_width`,
with function-preserving new units (`--init=zeros_out`, the default; also
"net2net", "gradmax", "pair_average", or the DARN paper's "naive" baseline),
through `darn.resize(model, "growth", darn.Target(units=max_width), ...)`. Optimizer
state (`--optimizer`, `AgeAwareAdam` by default) and the learning-rate
schedule carry over every growth; the loss on a probe batch is printed before
and after each growth.

`--mode=unified`: DARN's loop: after every epoch remove dead and redundant
units, then grow the layers whose activations are near full rank, keeping
the model under `--param_budget` parameters.

Run (about a minute on two CPU cores with the defaults):

    python examples/growth.py --num_train=6000 --epochs=6
    python examples/growth.py --mode=unified --param_budget=60000
"""

import cli  # noqa: F401  (examples/cli.py: quiet console, own --help; before Keras)

import keras  # noqa: E402
from absl import flags  # noqa: E402

import keras_darn as darn  # noqa: E402
from keras_darn import datasets  # noqa: E402
from keras_darn import metrics  # noqa: E402
from keras_darn.methods.growth import AgeAwareAdam  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_enum("mode", "schedule", ["schedule", "unified"], "Scheduled growth or DARN's loop.")
flags.DEFINE_string("data_dir", None, "Directory with the Fashion-MNIST IDX files.")
flags.DEFINE_integer("num_train", 6000, "Training examples (stratified subset).")
flags.DEFINE_integer("num_test", 2000, "Test examples (stratified subset).")
flags.DEFINE_integer("epochs", 6, "Training epochs.")
flags.DEFINE_integer("start_width", 16, "Initial width of both hidden layers.")
flags.DEFINE_integer("max_width", 128, "Largest width of a hidden layer.")
flags.DEFINE_integer("start_epoch", 1, "Completed epochs before the first growth.")
flags.DEFINE_float("rate", 1.0, "Relative growth per epoch.")
flags.DEFINE_enum("init", "zeros_out", ["zeros_out", "net2net", "pair_average", "naive", "gradmax"],
                  "Initialisation of new units.")
flags.DEFINE_float("noise", 0.0, "Relative noise of net2net / naive copies.")
flags.DEFINE_integer("param_budget", 60000, "Parameter budget of the unified loop.")
flags.DEFINE_integer("batch_size", 128, "Batch size.")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.DEFINE_enum("optimizer", "age_aware_adam", ["age_aware_adam", "adam"],
                  "AgeAwareAdam (per-weight bias correction: new weights start like a fresh "
                  "optimizer's; the README's recommendation for growth) or Keras' Adam.")
flags.DEFINE_string("tflite", None, "If set, write the final model as TFLite here.")


def main(argv):
    del argv
    keras.utils.set_random_seed(FLAGS.seed)
    (x_train, y_train), (x_test, y_test) = datasets.load_fashion_mnist(FLAGS.data_dir)
    x_train, y_train = datasets.subset(x_train, y_train, FLAGS.num_train, seed=0)
    x_test, y_test = datasets.subset(x_test, y_test, FLAGS.num_test, seed=0)
    x_train = (x_train.reshape(-1, 784) / 255.0).astype("float32")
    x_test = (x_test.reshape(-1, 784) / 255.0).astype("float32")

    inputs = keras.Input((784,))
    x = keras.layers.Dense(FLAGS.start_width, activation="relu", name="hidden1")(inputs)
    x = keras.layers.Dense(FLAGS.start_width, activation="relu", name="hidden2")(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="logits")(x))
    optimizer = AgeAwareAdam if FLAGS.optimizer == "age_aware_adam" else keras.optimizers.Adam
    model.compile(
        optimizer(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    common = dict(
        layers=["hidden1", "hidden2"], batch_size=FLAGS.batch_size,
        shuffle_seed=FLAGS.seed, seed=FLAGS.seed,
    )
    if FLAGS.mode == "schedule":
        # Schedule steps count epochs from 0: after `start_epoch` completed
        # epochs is step `start_epoch - 1`.
        result = darn.resize(
            model, "growth", darn.Target(units=FLAGS.max_width), x=x_train, y=y_train,
            validation_data=(x_test, y_test), epochs=FLAGS.epochs,
            schedule=darn.schedules.Constant(FLAGS.rate, start=max(0, FLAGS.start_epoch - 1)),
            init=FLAGS.init, noise=FLAGS.noise, **common,
        )
        steps = sorted({e["step"] for e in result.events})
        for step in steps:
            grown = [e for e in result.events if e["step"] == step]
            widths = {e["layer"]: e["width"] for e in grown}
            print(f"after epoch {step + 1}: widths {widths}, "
                  f"probe loss {grown[0]['loss_before']:.4f} -> {grown[0]['loss_after']:.4f}")
    else:
        result = darn.resize(
            model, "unified", darn.Target(params=FLAGS.param_budget, units=FLAGS.max_width),
            x=x_train, y=y_train, validation_data=(x_test, y_test), epochs=FLAGS.epochs,
            **common,
        )
        for event in result.events:
            print(f"round {event['round']}: {event['action']} {event['units']} units of "
                  f"{event['layer']} -> width {event['width']}")
    final = result.model
    print("test accuracy per epoch:", [round(a, 4) for a in result.history["val_accuracy"]])
    print(f"final model: {metrics.count_params(final)} parameters, "
          f"{metrics.count_flops(final)} FLOPs per example")
    if FLAGS.tflite:
        from keras_darn.export import save_tflite
        from keras_darn.export import to_tflite

        with cli.quiet():  # the TFLite converter's native log lines
            save_tflite(to_tflite(final), FLAGS.tflite)
        print("wrote", FLAGS.tflite)


if __name__ == "__main__":
    cli.run(main)
