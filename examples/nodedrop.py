"""NodeDrop on Fashion-MNIST: units regularized into a provably dead state.

Jensen, Harer & Chin, *NodeDrop*: a unit whose inputs lie in [0, 1] and whose
activation is 0 for v <= 0 outputs 0 for every input once
`sum(max(w, 0)) + b <= 0`. `darn.prepare(model, "nodedrop", ...)` puts the
penalty `lambda * (sum(max(w, 0)) + |b + C|)` on every hidden layer of a CNN
with SoftClampedReLU activations (outputs in [0, 1], so the condition holds
layer after layer) and returns the callback that masks every unit meeting the
condition during `fit`, which changes no output (checked here on a test batch
at every drop). `callback.finish()` then returns the plain smaller model; its
outputs are compared with the masked model's. With `--finetune_epochs`, `detach_nodedrop` removes
the penalty from the shrunk model, which trains on without it (not in the
paper). The final model is optionally written as TFLite.

Run (a few minutes on two CPU cores with the defaults):

    python examples/nodedrop.py --num_train=5000 --epochs=5 --lam=1e-3 --finetune_epochs=1
"""

import cli  # noqa: F401  (examples/cli.py: quiet console, own --help; before Keras)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

import keras_darn as darn  # noqa: E402
from keras_darn import datasets  # noqa: E402
from keras_darn.layers import soft_clamped_relu  # noqa: E402
from keras_darn.metrics import count_params  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "Directory with the Fashion-MNIST IDX files.")
flags.DEFINE_integer("num_train", 5000, "Training examples (stratified subset).")
flags.DEFINE_integer("num_test", 2000, "Test examples (stratified subset).")
flags.DEFINE_list("widths", ["32", "32", "64", "64", "128"], "Conv1-4 and dense widths.")
flags.DEFINE_float("lam", 1e-3, "NodeDrop lambda (the paper recommends 1e-5 for long runs).")
flags.DEFINE_float("c", 1.0, "NodeDrop C.")
flags.DEFINE_integer("epochs", 5, "Training epochs.")
flags.DEFINE_integer("finetune_epochs", 0, "Epochs of the shrunk model without the penalty.")
flags.DEFINE_integer("batch_size", 128, "Batch size.")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
flags.DEFINE_string("check_every", "epoch", '"epoch" or a number of steps.')
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.DEFINE_string("tflite", None, "If set, write the shrunk model as TFLite here.")


def build_cnn(widths):
    """conv-conv-pool-conv-conv-pool-dense-softmax, SoftClampedReLU (Table 1 shape)."""
    layers = keras.layers
    inputs = keras.Input((28, 28, 1), name="image")
    x = inputs
    for index, filters in enumerate(widths[:4]):
        x = layers.Conv2D(filters, 3, activation=soft_clamped_relu)(x)
        if index % 2 == 1:
            x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(widths[4], activation=soft_clamped_relu)(x)
    outputs = layers.Dense(10, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs)


def _compile(model):
    model.compile(
        keras.optimizers.Adam(FLAGS.learning_rate),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )


def main(argv):
    del argv
    keras.utils.set_random_seed(FLAGS.seed)
    (x_train, y_train), (x_test, y_test) = datasets.load_fashion_mnist(FLAGS.data_dir)
    x_train, y_train = datasets.subset(x_train, y_train, FLAGS.num_train)
    x_test, y_test = datasets.subset(x_test, y_test, FLAGS.num_test)
    x_train = datasets.to_float_images(x_train)  # in [0, 1]: declared below
    x_test = datasets.to_float_images(x_test)

    plain = build_cnn([int(w) for w in FLAGS.widths])
    check_every = FLAGS.check_every
    if check_every != "epoch":
        check_every = int(check_every)
    model, nodedrop = darn.prepare(
        plain, "nodedrop", lam=FLAGS.lam, c=FLAGS.c, input_range=(0, 1),
        check_every=check_every, check_data=x_test[:256], verbose=1,
    )
    print(darn.methods.nodedrop.nodedrop_eligibility(model, (0, 1)).summary())
    _compile(model)
    model.fit(
        x_train, y_train, batch_size=FLAGS.batch_size, epochs=FLAGS.epochs,
        validation_data=(x_test, y_test), callbacks=[nodedrop], verbose=2,
    )
    changes = [e["output_change"] for e in nodedrop.events]
    print(f"{len(nodedrop.events)} drop events; largest change of the test-batch "
          f"outputs at a drop: {max(changes) if changes else 'no drops'}")

    result = nodedrop.finish()
    print(result.summary())
    small = result.model
    reference = model.predict(x_test, verbose=0)
    outputs = small.predict(x_test, verbose=0)
    accuracy = float(np.mean(outputs.argmax(axis=1) == y_test))
    print(f"parameters: {count_params(plain)} -> {count_params(small)}")
    print("widths:", [getattr(l, "filters", None) or l.units for l in small.layers
                      if isinstance(l, (keras.layers.Conv2D, keras.layers.Dense))])
    print(f"test accuracy of the shrunk model: {accuracy:.4f}; largest output change "
          f"against the masked model: {np.max(np.abs(outputs - reference)):.2e}")
    if FLAGS.finetune_epochs:
        small = darn.methods.nodedrop.detach_nodedrop(small)
        _compile(small)  # a fresh optimizer for the shrunk model
        small.fit(x_train, y_train, batch_size=FLAGS.batch_size,
                  epochs=FLAGS.finetune_epochs, verbose=2)
        outputs = small.predict(x_test, verbose=0)
        print(f"test accuracy after {FLAGS.finetune_epochs} epoch(s) without the penalty: "
              f"{np.mean(outputs.argmax(axis=1) == y_test):.4f} "
              f"({count_params(small)} parameters)")
    if FLAGS.tflite:
        from keras_darn import export

        with cli.quiet():  # the TFLite converter's native log lines
            tflite_model = export.to_tflite(small)
        export.save_tflite(tflite_model, FLAGS.tflite)
        lite = export.tflite_predict(tflite_model, x_test[:256])
        print(f"wrote {FLAGS.tflite}; largest TFLite vs Keras output difference: "
              f"{np.max(np.abs(lite - outputs[:256])):.2e}")


if __name__ == "__main__":
    cli.run(main)
