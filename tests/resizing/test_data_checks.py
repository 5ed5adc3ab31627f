"""Data that cannot feed the model is refused by the front door before anything trains."""

import keras
import numpy as np
import pytest

import keras_darn as darn


def _mlp():
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, name="hidden"),
                             keras.layers.Dense(2)])


def _two_inputs():
    a, b = keras.Input((4,), name="a"), keras.Input((3, 2), name="b")
    x = keras.layers.Concatenate()([a, keras.layers.Flatten()(b)])
    return keras.Model([a, b], keras.layers.Dense(2)(keras.layers.Dense(8, name="hidden")(x)))


@pytest.mark.parametrize("validation_data, match", [
    ((np.zeros((5, 7)), np.zeros(5)), r"`validation_data`: its inputs have shape \(5, 7\), "
                                      r"but model '\w+' takes inputs of shape \(None, 8\)"),
    (np.zeros((5, 8, 3)), r"`validation_data`: its inputs have shape \(5, 8, 3\)"),
    ((np.zeros((5, 8)), np.zeros(4)), r"`validation_data`: 5 inputs but 4 targets"),
])
def test_prepare_refuses_validation_data_that_does_not_fit(validation_data, match):
    model = _mlp()
    with pytest.raises(ValueError, match=match):
        darn.prepare(model, "taylor1", darn.Target(fraction=0.5), validation_data=validation_data)


def test_resize_refuses_training_inputs_that_do_not_fit():
    model = _mlp()
    model.compile("adam", "mse")
    with pytest.raises(ValueError, match=r"`x`: its inputs have shape \(6, 9\)"):
        darn.resize(model, "magnitude", darn.Target(fraction=0.5), x=np.zeros((6, 9)),
                    y=np.zeros((6, 2)))
    with pytest.raises(ValueError, match=r"`x`: 6 inputs but 5 targets"):
        darn.resize(model, "magnitude", darn.Target(fraction=0.5), x=np.zeros((6, 8)),
                    y=np.zeros((5, 2)))
    assert model.optimizer.iterations.numpy() == 0


def test_several_inputs_are_checked_by_position_and_by_name():
    model = _two_inputs()
    good = [np.zeros((5, 4)), np.zeros((5, 3, 2))]
    darn.prepare(model, "taylor1", darn.Target(fraction=0.5), validation_data=(good, np.zeros(5)))
    darn.prepare(model, "taylor1", darn.Target(fraction=0.5),
                 validation_data=({"a": good[0], "b": good[1]}, np.zeros(5)))
    with pytest.raises(ValueError, match=r"for input 'b' have shape \(5, 3, 3\)"):
        darn.prepare(model, "taylor1", darn.Target(fraction=0.5),
                     validation_data=([good[0], np.zeros((5, 3, 3))], np.zeros(5)))
    with pytest.raises(ValueError, match=r"the key 'c' is not an input .* \['a', 'b'\]"):
        darn.prepare(model, "taylor1", darn.Target(fraction=0.5),
                     validation_data=({"a": good[0], "c": good[1]}, np.zeros(5)))


def test_what_keras_accepts_is_accepted():
    inputs = keras.Input((1,))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(8)(inputs)))
    # A missing last axis of size 1: Keras adds it.
    darn.prepare(model, "taylor1", darn.Target(fraction=0.5),
                 validation_data=(np.zeros(5), np.zeros(5)))


# Keras warns about dict keys that differ from the input names, and follows the keys.
@pytest.mark.filterwarnings("ignore:When providing `inputs` as a dict")
def test_a_model_built_on_a_dict_is_fed_by_its_keys():
    inputs = {"pixels": keras.Input((4,), name="first"), "extra": keras.Input((2,), name="second")}
    x = keras.layers.Concatenate()([inputs["pixels"], inputs["extra"]])
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(8, name="hidden")(x)))
    good = {"pixels": np.zeros((5, 4)), "extra": np.zeros((5, 2))}
    darn.prepare(model, "taylor1", darn.Target(fraction=0.5), validation_data=(good, np.zeros(5)))
    with pytest.raises(ValueError, match=r"for input 'extra' have shape \(5, 3\)"):
        darn.prepare(model, "taylor1", darn.Target(fraction=0.5),
                     validation_data=({**good, "extra": np.zeros((5, 3))}, np.zeros(5)))
