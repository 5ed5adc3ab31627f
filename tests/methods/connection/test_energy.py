"""Energy per inference from the paper's Table V, against hand computation."""

import keras
import numpy as np
import pytest

from keras_darn.layers import PrunableConv2D
from keras_darn.layers import PrunableDense
from keras_darn.metrics import energy
from keras_darn.rebuild import shrink


def masked_dense_model():
    model = keras.Sequential(
        [
            keras.Input((4,)),
            PrunableDense(3, activation="relu", connection_mask=True, name="h"),
            keras.layers.Dense(2, use_bias=False, name="out"),
        ]
    )
    mask = np.ones((4, 3), "float32")
    mask[:, 2] = 0.0  # unit 2: no live input
    mask[0, 0] = 0.0  # unit 0: 3 live inputs; unit 1: 4
    model.get_layer("h").set_kernel_mask(mask)
    return model


def test_table_v_costs():
    assert energy.ENERGY_COSTS_45NM == {
        "int8": (0.2, 0.03),
        "int32": (3.1, 0.1),
        "float16": (1.1, 0.4),
        "float32": (3.7, 0.9),
    }


def test_dense_energy_by_hand():
    report = energy.energy_by_layer(masked_dense_model())
    # h: 7 live weights, 7 multiplies; with a bias, (3 - 1 + 1) + (4 - 1 + 1) = 7
    # additions; unit 2 just outputs its bias.
    assert report["h"] == {
        "weights": 7, "multiplies": 7, "additions": 7, "energy_pj": pytest.approx(7 * 3.7 + 7 * 0.9)
    }
    # out: plain, no bias: 6 weights, 2 units x (3 - 1) = 4 additions.
    assert report["out"]["multiplies"] == 6 and report["out"]["additions"] == 4
    total = energy.estimate_energy(masked_dense_model())
    assert total == pytest.approx(13 * 3.7 + 11 * 0.9)


def test_precisions_and_paper_convention():
    model = masked_dense_model()
    assert energy.estimate_energy(model, dtype="int8") == pytest.approx(13 * 0.2 + 11 * 0.03)
    assert energy.estimate_energy(model, dtype="float16") == pytest.approx(13 * 1.1 + 11 * 0.4)
    assert energy.estimate_energy(model, dtype="int8", add_dtype="int32") == pytest.approx(
        13 * 0.2 + 11 * 0.1
    )
    # The paper's figure counts multiplies only: 4,389 float32 weights -> 16.2 nJ.
    paper = keras.Sequential([keras.Input((4389,)), keras.layers.Dense(1)])
    assert energy.estimate_energy(paper, include_additions=False) / 1000 == pytest.approx(16.2393)


def test_conv_counts_every_output_position():
    model = keras.Sequential(
        [keras.Input((5, 5, 1)), PrunableConv2D(2, 3, connection_mask=True, name="conv")]
    )
    mask = np.ones((3, 3, 1, 2), "float32")
    mask[0, :, 0, 0] = 0.0  # filter 0: 6 live weights; filter 1: 9
    model.get_layer("conv").set_kernel_mask(mask)
    report = energy.energy_by_layer(model)["conv"]
    positions = 3 * 3
    assert report["weights"] == 15
    assert report["multiplies"] == 15 * positions
    assert report["additions"] == 15 * positions  # with bias: one add per product
    assert report["energy_pj"] == pytest.approx(15 * positions * (3.7 + 0.9))


def test_masked_model_and_shrunk_model_cost_the_same():
    model = keras.Sequential(
        [
            keras.Input((4,)),
            PrunableDense(5, activation="relu", connection_mask=True, name="h"),
            PrunableDense(3, connection_mask=True, name="out"),
        ]
    )
    mask = model.get_layer("h").get_kernel_mask()
    mask[0, :3] = 0.0
    model.get_layer("h").set_kernel_mask(mask)
    unit_mask = np.ones(5, "float32")
    unit_mask[4] = 0.0
    model.get_layer("h").set_unit_mask(unit_mask)
    out_mask = model.get_layer("out").get_kernel_mask()
    out_mask[4, :] = 0.0  # the masked unit's outgoing weights are pruned too
    model.get_layer("out").set_kernel_mask(out_mask)
    small = shrink(model)
    assert small.get_layer("h").units == 4
    assert energy.estimate_energy(small) == pytest.approx(energy.estimate_energy(model))


def test_invalid_dtype_and_uncounted_layers_warn():
    with pytest.raises(ValueError, match="dtype"):
        energy.estimate_energy(masked_dense_model(), dtype="bfloat16")
    with pytest.raises(ValueError, match="add_dtype"):
        energy.estimate_energy(masked_dense_model(), add_dtype="int4")
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization()]
    )
    with pytest.warns(UserWarning, match="BatchNormalization"):
        report = energy.energy_by_layer(model)
    assert list(report) == [model.layers[0].name]
