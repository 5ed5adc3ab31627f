"""DARN's Dynamic Neuron Removal on a small Fashion-MNIST CNN.

Gandhi & Bandaru, Algorithm 1: after pretraining, filters are pruned at
thresholds of increasing aggression (by the mean absolute activation of each
filter, or one filter of every highly correlated pair), each followed by up
to `max_retrains` epochs of retraining; a pruned model is accepted while its
validation accuracy stays within `sacrifice` of the pretrained one. Prints
parameters, FLOPs and accuracy of every step and writes the history plot.

Run (a few minutes on two CPU cores):

    python examples/darn_prune.py --criterion=l1
    python examples/darn_prune.py --criterion=correlation --fold
"""

import cli  # noqa: F401  (examples/cli.py: quiet console, own --help; before Keras)

import keras  # noqa: E402
from absl import flags  # noqa: E402

from keras_darn import datasets  # noqa: E402
from keras_darn import plots  # noqa: E402
from keras_darn.methods.darn import accuracy  # noqa: E402
from keras_darn.resizing import Target  # noqa: E402
from keras_darn.resizing import resize  # noqa: E402
from keras_darn.resizing import schedules  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "Directory with the Fashion-MNIST IDX files.")
flags.DEFINE_enum("criterion", "l1", ["l1", "variance", "correlation"], "Pruning statistic.")
flags.DEFINE_bool("fold", False, "Fold removed correlated filters into their partners.")
flags.DEFINE_integer("num_train", 5000, "Training examples.")
flags.DEFINE_integer("num_val", 1000, "Validation examples.")
flags.DEFINE_integer("pretrain_epochs", 3, "Pretraining epochs (the paper: 3).")
flags.DEFINE_integer("max_retrains", 2, "Retraining epochs per threshold.")
flags.DEFINE_float("sacrifice", 0.015, "Accuracy that may be lost.")
flags.DEFINE_string("plot", "darn_history.png", "PNG of the history ('' for none).")
flags.DEFINE_integer("seed", 0, "Random seed.")


def build_cnn():
    layers = keras.layers
    model = keras.Sequential([keras.Input((28, 28, 1))])
    for index, width in enumerate([16, 32, 32, 32], 1):
        model.add(layers.Conv2D(width, 3, padding="same", name=f"conv{index}"))
        model.add(layers.BatchNormalization())
        model.add(layers.ReLU())
        if index < 4:
            model.add(layers.MaxPooling2D(2))
    model.add(layers.Flatten())
    model.add(layers.Dense(10, activation="softmax", name="linear"))
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def main(argv):
    del argv
    keras.utils.set_random_seed(FLAGS.seed)
    (x, y), _ = datasets.load_fashion_mnist(FLAGS.data_dir)
    x, y = datasets.subset(x, y, FLAGS.num_train + FLAGS.num_val, seed=FLAGS.seed)
    x = datasets.to_float_images(x)
    x_train, y_train = x[: FLAGS.num_train], y[: FLAGS.num_train]
    x_val, y_val = x[FLAGS.num_train:], y[FLAGS.num_train:]

    model = build_cnn()
    model.fit(x_train, y_train, epochs=FLAGS.pretrain_epochs, batch_size=64, verbose=2)
    if FLAGS.criterion == "correlation":
        thresholds = schedules.LogSpaced(0.98, 0.5, 6, distance_to_one=True)
    else:
        thresholds = schedules.LogSpaced(0.05, 0.6, 6)
    result = resize(
        model, "darn", Target(max_accuracy_drop=FLAGS.sacrifice), x=x_train, y=y_train,
        validation_data=(x_val, y_val), epochs=1, schedule=thresholds, verbose=1,
        criterion=FLAGS.criterion, max_retrains=FLAGS.max_retrains, fold=FLAGS.fold,
        layers=["conv1", "conv2", "conv3"],
    )
    pruned, history = result.model, result.history
    first, steps = history["steps"][0], [s for s in history["steps"] if s["accepted"]]
    last = steps[-1]
    print(f"Accuracy {first['accuracy']:.4f} -> {accuracy(pruned, x_val, y_val):.4f}; "
          f"parameters {first['params']} -> {last['params']}; FLOPs {first['flops']} -> "
          f"{last['flops']}; widths {last['widths']}")
    if FLAGS.plot:
        plots.plot_darn_history(history, FLAGS.plot, title=f"DARN, {FLAGS.criterion}")
        print(f"Wrote {FLAGS.plot}")


if __name__ == "__main__":
    cli.run(main)
