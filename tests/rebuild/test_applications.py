"""The Rebuilder on keras.applications models (weights=None, 32x32 inputs)."""

import keras
import numpy as np
import pytest
from support import model_zoo

import keras_darn as darn
from keras_darn.graph import unit_groups

APPLICATIONS = ["ResNet50", "MobileNetV2", "DenseNet121", "EfficientNetB0"]


def _application(name):
    constructor = getattr(keras.applications, name)
    model = constructor(
        weights=None, input_shape=(32, 32, 3), classes=10, classifier_activation=None
    )
    return model_zoo.randomize_normalization(model)


def _relative_diff(actual, expected):
    return float(np.abs(actual - expected).max()) / float(np.abs(expected).max())


@pytest.mark.slow
@pytest.mark.parametrize("name", APPLICATIONS)
def test_application_growth_removal_and_shrink(name, tmp_path):
    model = _application(name)
    x = model_zoo.sample_input(model, batch=2)
    before = model(x, training=False).numpy()
    groups = unit_groups(model, resizable_only=True)
    assert groups

    plan = {g.layers[0]: 2 for g in groups}
    for init in ("zeros_out", "net2net"):
        grown = darn.add_units(model, plan, init=init, seed=0)
        assert _relative_diff(grown(x, training=False).numpy(), before) <= 1e-5
    removal = {}
    for layer_name in plan:
        width = grown.get_layer(layer_name).get_config().get("filters") or grown.get_layer(
            layer_name
        ).get_config().get("units")
        removal[layer_name] = [width - 2, width - 1]
    restored = darn.remove_units(darn.add_units(model, plan, seed=0), removal)
    for original, back in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_array_equal(original, back)

    dead_model = keras.models.clone_model(model)
    dead_model.set_weights(model.get_weights())
    switched_off = model_zoo.switch_off(dead_model, 0.3)
    dead_before = dead_model(x, training=False).numpy()
    small = darn.shrink(dead_model)
    assert _relative_diff(small(x, training=False).numpy(), dead_before) <= 1e-5
    assert darn.count_params(small) == model_zoo.expected_params(dead_model, switched_off)

    plan, removed = {}, {}
    for group in groups:
        count = int(0.3 * group.size)
        if count:
            plan[group.layers[0]] = group.indices(group.layers[0])[:count].tolist()
            removed.update({layer_name: count for layer_name in group.layers})
    pruned = darn.remove_units(model, plan)
    assert darn.count_params(pruned) == model_zoo.expected_params(model, removed)
    assert pruned(x).shape == before.shape
    path = str(tmp_path / "pruned.keras")
    pruned.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(x).numpy(), pruned(x).numpy(), atol=1e-5)
    tflite = darn.export.to_tflite(pruned)
    expected = pruned(x, training=False).numpy()
    assert _relative_diff(darn.export.tflite_predict(tflite, x), expected) <= 1e-4


@pytest.mark.parametrize("name", ["MobileNetV2", "EfficientNetB0"])
def test_application_growth_is_exact_in_default_run(name):
    """A cheaper check that runs by default; the full one is marked slow."""
    model = _application(name)
    x = model_zoo.sample_input(model, batch=2)
    before = model(x, training=False).numpy()
    plan = {g.layers[0]: 1 for g in unit_groups(model, resizable_only=True)}
    grown = darn.add_units(model, plan, init="zeros_out", seed=0)
    assert _relative_diff(grown(x, training=False).numpy(), before) <= 1e-5
