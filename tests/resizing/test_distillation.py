"""Distillation from the unpruned model, during fit and between fits (tiny models)."""

import json
import zipfile

import keras
import numpy as np
import pytest

import keras_darn as darn
from keras_darn.resizing.entry import get_method
from keras_darn.resizing.entry import method_names

L = keras.layers


def _data(count=64):
    rng = np.random.default_rng(0)
    return rng.uniform(size=(count, 8)).astype("float32"), rng.integers(0, 3, count)


def _model(activation="softmax", regularizer=None):
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((8,)),
        L.Dense(16, activation="relu", name="hidden", kernel_regularizer=regularizer),
        L.Dense(3, activation=activation, name="out"),
    ])


def _weights(model):
    return [w.copy() for w in model.get_weights()]


def _plain(model, tmp_path):
    path = str(tmp_path / "small.keras")
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    return config["class_name"] == "Sequential" and "keras_darn" not in json.dumps(config)


def test_during_fit_the_student_learns_from_a_frozen_copy_of_the_model_given(tmp_path):
    x, y = _data()
    model = _model()
    given = _weights(model)
    distiller, callback = darn.prepare(model, "magnitude", darn.Target(fraction=0.5),
                                       distill=True)
    assert isinstance(distiller, keras.distillation.Distiller)
    teacher = distiller.teacher
    assert teacher is not model and not teacher.trainable
    distiller.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = distiller.fit(x, y, epochs=2, verbose=0, callbacks=[callback])
    assert {"student_loss", "distillation_loss"} <= set(history.history)
    # The teacher did not move, nor did the model given.
    for before, after in zip(given, teacher.get_weights()):
        np.testing.assert_array_equal(before, after)
    for before, after in zip(given, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    result = callback.finish()
    assert result.model.get_layer("hidden").units == 8 and _plain(result.model, tmp_path)
    np.testing.assert_allclose(result.model.predict(x, verbose=0),
                               distiller.student.predict(x, verbose=0), atol=1e-6)


def _kl(teacher, student, temperature):
    def tempered(logits):
        scaled = logits / temperature
        scaled = scaled - scaled.max(-1, keepdims=True)
        return np.exp(scaled) / np.exp(scaled).sum(-1, keepdims=True)

    p, q = tempered(teacher), tempered(student)
    return float(np.mean(np.sum(p * np.log(p / q), -1))) * temperature**2


@pytest.mark.parametrize("activation", ["softmax", None])
def test_the_loss_is_the_documented_mix_of_student_and_distillation_losses(activation):
    x, y = _data(16)
    teacher = _model(activation)
    student = _model(activation)
    student.set_weights([w * 0.5 for w in student.get_weights()])
    distillation = darn.Distillation(teacher=teacher, temperature=2.0, weight=0.3)
    distiller = distillation.distiller(student, distillation.teacher_for(student))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=activation is None)
    distiller.compile("sgd", loss)
    total = float(distiller.compute_loss(x, y, student(x)))
    t, s = teacher.predict(x, verbose=0), student.predict(x, verbose=0)
    if activation == "softmax":  # probabilities: their logarithms are the logits
        t, s = np.log(t), np.log(s)
    expected = 0.7 * float(loss(y, student(x))) + 0.3 * _kl(t, s, 2.0)
    np.testing.assert_allclose(total, expected, rtol=1e-4)


def test_the_students_regularization_losses_stay_in_the_loss():
    x, y = _data(16)
    plain = darn.Distillation(weight=0.5)
    student = _model(regularizer=keras.regularizers.L2(0.1))
    distiller = plain.distiller(student, plain.teacher_for(_model()))
    distiller.compile("sgd", "sparse_categorical_crossentropy")
    with_penalty = float(distiller.compute_loss(x, y, student(x)))
    penalty = float(keras.ops.sum(student.losses))
    assert penalty > 0
    unregularized = _model()
    unregularized.set_weights(student.get_weights())
    other = plain.distiller(unregularized, plain.teacher_for(_model()))
    other.compile("sgd", "sparse_categorical_crossentropy")
    without = float(other.compute_loss(x, y, unregularized(x)))
    np.testing.assert_allclose(with_penalty, without + penalty, rtol=1e-5)


def _normalized_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    x = L.Dense(16, use_bias=False, name="hidden")(inputs)
    x = L.ReLU()(L.BatchNormalization(name="norm")(x))
    return keras.Model(inputs, L.Dense(3, activation="softmax", name="out")(x))


_DURING_FIT = {
    "nodedrop": (_model, {"input_range": (0, 1)}, None),
    "nodedrop_bn": (_normalized_model, {"input_range": (0, 1), "batch_size": 16}, None),
    "standout": (_model, {}, darn.Target(units=8)),
}


@pytest.mark.filterwarnings("ignore:NodeDrop does not cover")
@pytest.mark.parametrize("name", [n for n in method_names() if get_method(n).acts_during_fit])
def test_every_method_that_acts_during_fit_distills(name):
    x, y = _data()
    make, options, target = _DURING_FIT.get(name, (_model, {}, darn.Target(fraction=0.5)))
    distiller, callback = darn.prepare(make(), name, target, validation_data=(x, y),
                                       distill=darn.Distillation(temperature=2.0), **options)
    distiller.compile("adam", "sparse_categorical_crossentropy")
    distiller.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[callback])
    small = callback.finish().model
    assert not isinstance(small, keras.distillation.Distiller)
    ours = [type(layer).__name__ for layer in small.layers
            if type(layer).__module__.startswith("keras_darn")]
    # Standout hands back its StandoutDense layers (their inference rule), distilled or not.
    assert ours == (["StandoutDense"] if name == "standout" else [])
    assert small.predict(x, verbose=0).shape == (64, 3)


def test_between_fits_fine_tuning_distills_and_ranking_refuses(tmp_path):
    x, y = _data()
    model = _model()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    teacher = _model()
    result = darn.resize(model, "magnitude", darn.Target(fraction=0.5), x=x, y=y, epochs=3,
                         distill=teacher)
    assert {"student_loss", "distillation_loss", "accuracy"} <= set(result.history)
    assert result.model.get_layer("hidden").units == 8 and _plain(result.model, tmp_path)
    with pytest.raises(ValueError, match=r"does not train, so there is nothing to distill"):
        darn.resize(model, "taylor1", darn.Target(fraction=0.5), validation_data=(x, y),
                    distill=True)
    with pytest.raises(ValueError, match=r"Method 'darn' does not distill between fits"):
        darn.resize(model, "darn", darn.Target(max_accuracy_drop=0.01), x=x, y=y,
                    validation_data=(x, y), distill=True)
    assert model.optimizer.iterations.numpy() == 0


@pytest.mark.parametrize("call, message", [
    (lambda: darn.Distillation(temperature=0), r"`temperature`, expected a number > 0"),
    (lambda: darn.Distillation(weight=1.5), r"`weight`, expected a number in \[0, 1\]"),
    (lambda: darn.Distillation(teacher="big"), r"`teacher`, expected a keras.Model"),
    (lambda: darn.prepare(_model(), "magnitude", darn.Target(fraction=0.5), distill="yes"),
     r"`distill`, expected True, a teacher keras.Model or a darn.Distillation. "
     r"Received: distill='yes'"),
])
def test_bad_distillation_arguments_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()
