"""Recurrent layers: LSTM, GRU and SimpleRNN units, alone and inside Bidirectional."""

import keras
import numpy as np
import pytest

import keras_darn as darn

L = keras.layers
RNNS = {"LSTM": (L.LSTM, 4), "GRU": (L.GRU, 3), "SimpleRNN": (L.SimpleRNN, 1)}


def _model(rnn, merge_mode="concat", bidirectional=True, return_sequences=True):
    inputs = keras.Input((5, 3))
    x = L.Dense(8, name="d")(inputs)
    layer = RNNS[rnn][0](4, return_sequences=return_sequences, name="rnn")
    if bidirectional:
        layer = L.Bidirectional(layer, merge_mode=merge_mode, name="bi")
    x = layer(x)
    if merge_mode is None and bidirectional:
        x = L.Concatenate()(x)
    x = L.Dense(6, name="e")(x)
    if return_sequences:
        x = L.Flatten()(x)
    model = keras.Model(inputs, L.Dense(2, name="out")(x))
    return model, np.random.default_rng(0).random((3, 5, 3)).astype("float32")


def test_bidirectional_lstm_keeps_forward_and_backward_weights_apart():
    # The forward and backward LSTMs hold weights of the same names; a change
    # elsewhere in the model must leave both exactly as they were.
    model, x = _model("LSTM")
    grown = darn.add_units(model, {"e": 2})
    np.testing.assert_array_equal(grown(x).numpy(), model(x).numpy())
    old, new = model.get_layer("bi"), grown.get_layer("bi")
    for a, b in zip(old.weights, new.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("rnn", sorted(RNNS))
def test_removal_slices_every_gate_and_both_recurrent_axes(rnn):
    model, x = _model(rnn, bidirectional=False)
    removed = [1, 3]
    smaller = darn.remove_units(model, {"rnn": removed})
    gates = RNNS[rnn][1]
    columns = [g * 4 + k for g in range(gates) for k in removed]
    old, new = model.get_layer("rnn").cell, smaller.get_layer("rnn").cell
    np.testing.assert_array_equal(new.kernel.numpy(), np.delete(old.kernel.numpy(), columns, axis=1))
    recurrent = np.delete(np.delete(old.recurrent_kernel.numpy(), columns, axis=1), removed, axis=0)
    np.testing.assert_array_equal(new.recurrent_kernel.numpy(), recurrent)
    np.testing.assert_array_equal(new.bias.numpy(), np.delete(old.bias.numpy(), columns, axis=-1))
    rows = np.delete(model.get_layer("e").kernel.numpy(), removed, axis=0)
    np.testing.assert_array_equal(smaller.get_layer("e").kernel.numpy(), rows)
    assert smaller(x).shape == (3, 2)


@pytest.mark.parametrize("rnn", sorted(RNNS))
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "ave", "mul", None])
def test_bidirectional_growth_is_exact_and_removal_gives_the_weights_back(rnn, merge_mode):
    model, x = _model(rnn, merge_mode)
    separate = merge_mode in ("concat", None)
    groups = {tuple(g.layers) for g in darn.unit_groups(model, resizable_only=True)}
    assert (("bi",) in groups) and ((("bi/backward",) in groups) == separate)
    plan = {"bi": 2, "d": 1, **({"bi/backward": 2} if separate else {})}
    grown = darn.add_units(model, plan, seed=0)
    assert grown.get_layer("bi").forward_layer.units == 6
    assert grown.get_layer("bi").backward_layer.units == 6
    np.testing.assert_allclose(grown(x).numpy(), model(x).numpy(), atol=1e-6)
    undo = {"bi": [4, 5], "d": [8], **({"bi/backward": [4, 5]} if separate else {})}
    restored = darn.remove_units(grown, undo)
    for a, b in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_bidirectional_concat_removes_a_backward_unit_from_its_own_range():
    model, x = _model("GRU")
    smaller = darn.remove_units(model, {"bi": [0], "bi/backward": [2]})
    rows = np.delete(model.get_layer("e").kernel.numpy(), [0, 4 + 2], axis=0)
    np.testing.assert_array_equal(smaller.get_layer("e").kernel.numpy(), rows)
    backward = model.get_layer("bi").backward_layer.cell.kernel.numpy()
    columns = [g * 4 + 2 for g in range(3)]
    np.testing.assert_array_equal(
        smaller.get_layer("bi").backward_layer.cell.kernel.numpy(), np.delete(backward, columns, axis=1)
    )
    assert smaller(x).shape == (3, 2)


def test_bidirectional_concat_refuses_unequal_directions():
    model, _ = _model("LSTM")
    with pytest.raises(ValueError, match="as many of each"):
        darn.remove_units(model, {"bi": [0]})


def test_last_state_output_and_time_distributed_dense():
    inputs = keras.Input((5, 3))
    x = L.TimeDistributed(L.Dense(7), name="td")(inputs)
    x = L.LSTM(4, name="rnn")(x)
    model = keras.Model(inputs, L.Dense(2)(x))
    sample = np.random.default_rng(1).random((2, 5, 3)).astype("float32")
    grown = darn.add_units(model, {"td": 3, "rnn": 2}, seed=0)
    assert grown.get_layer("td").layer.units == 10 and grown.get_layer("rnn").units == 6
    np.testing.assert_allclose(grown(sample).numpy(), model(sample).numpy(), atol=1e-6)
    smaller = darn.remove_units(model, {"td": [0, 6]})
    kernel = np.delete(model.get_layer("td").layer.kernel.numpy(), [0, 6], axis=1)
    np.testing.assert_array_equal(smaller.get_layer("td").layer.kernel.numpy(), kernel)


def test_a_training_step_after_resizing_a_bidirectional_lstm():
    model, x = _model("LSTM")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    y = np.array([0, 1, 0])
    model.fit(x, y, epochs=1, verbose=0)
    smaller = darn.remove_units(model, {"bi": [1], "bi/backward": [2]})
    old = model.optimizer._momentums[model.optimizer._get_variable_index(model.get_layer("bi").backward_layer.cell.kernel)]
    new_kernel = smaller.get_layer("bi").backward_layer.cell.kernel
    new = smaller.optimizer._momentums[smaller.optimizer._get_variable_index(new_kernel)]
    columns = [g * 4 + 2 for g in range(4)]
    np.testing.assert_array_equal(new.numpy(), np.delete(old.numpy(), columns, axis=1))
    history = smaller.fit(x, y, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize("merge_mode", ["concat", "sum"])
def test_shrink_removes_masked_units_read_by_a_bidirectional_layer(merge_mode):
    inputs = keras.Input((5, 3))
    prunable = darn.layers.PrunableDense(8, name="p")
    x = L.Bidirectional(L.GRU(4, return_sequences=True), merge_mode=merge_mode, name="bi")(prunable(inputs))
    x = L.TimeDistributed(L.Dense(5), name="td")(x)
    model = keras.Model(inputs, L.Dense(2)(L.Flatten()(x)))
    prunable.set_unit_mask([1, 0, 1, 1, 0, 1, 1, 1])
    sample = np.random.default_rng(0).random((2, 5, 3)).astype("float32")
    small = darn.shrink(model)
    assert small.get_layer("p").units == 6
    np.testing.assert_allclose(small(sample).numpy(), model(sample).numpy(), atol=1e-6)
    kernel = small.get_layer("bi").backward_layer.cell.kernel.numpy()
    expected = np.delete(model.get_layer("bi").backward_layer.cell.kernel.numpy(), [1, 4], axis=0)
    np.testing.assert_array_equal(kernel, expected)
