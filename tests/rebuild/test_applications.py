"""The Rebuilder on the `keras.applications` zoo (weights=None, small inputs).

Every architecture: no group is fixed for lack of support; 25 % of every
resizable group removed in one plan builds, runs, has fewer parameters,
survives a `.keras` round trip and converts to TFLite; zeros_out growth of
every group is exact, judged in float64 layer by layer (every node fed the
original's inputs, so a deep untrained net cannot amplify rounding until a
misplaced weight hides in it) and, where the net amplifies little, at the
logits against the change that rounding alone makes; and
removing the added units gives the weights back bit for bit. Groups that
reach a `LayerNormalization` over channels are left out of the growth check:
new channels change its statistics, which the Rebuilder warns about. The whole zoo
is marked slow; one small architecture runs by default.
"""

import keras
import numpy as np
import pytest
from support import model_zoo

import keras_darn as darn
from keras_darn.graph import unit_groups

FAST_SAMPLE = ["MobileNetV3Small"]


@pytest.fixture(autouse=True)
def _fresh_session():
    yield
    keras.backend.clear_session()


def _removal_plan(groups, fraction):
    plan = {}
    for group in groups:
        count = int(fraction * group.size)
        if count:
            first = group.layers[0]
            plan[first] = group.indices(first)[:count].tolist()
    return plan


def check_application(name, tmp_path):
    model = model_zoo.application(name)
    x = model_zoo.sample_input(model, batch=2)
    groups = unit_groups(model)
    unsupported = model_zoo.unsupported_groups(groups)
    assert not unsupported, [g.reason for g in unsupported][:5]
    resizable = [g for g in groups if g.resizable]
    assert resizable

    pruned = darn.remove_units(model, _removal_plan(resizable, 0.25), compile=False)
    assert darn.count_params(pruned) < darn.count_params(model)
    expected = pruned(x, training=False).numpy()
    assert expected.shape == (2, 10) and np.isfinite(expected).all()
    path = str(tmp_path / "pruned.keras")
    pruned.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(loaded(x, training=False).numpy(), expected)
    tflite = darn.export.to_tflite(pruned)
    converted = darn.export.tflite_predict(tflite, x)
    assert converted.shape == expected.shape and np.isfinite(converted).all()
    # TFLite's kernels round differently; where the pruned float32 net
    # amplifies rounding itself (EfficientNetV2L's logits differ by a
    # relative 0.85 between Keras and TFLite), agreement is judged against
    # what a one-ulp change of its kernels does (see the float64 check below).
    floor32 = model_zoo.rounding_floor(pruned, x)
    assert model_zoo.relative_diff(converted, expected) <= max(1e-3, 100 * floor32)

    model64 = model_zoo.application(name, floatx="float64")
    model64.set_weights(model.get_weights())
    x64 = x.astype("float64")
    before = model64(x64, training=False).numpy()
    # Units that reach a LayerNormalization over channels (ConvNeXt's
    # residual stream) cannot grow exactly: the Rebuilder says so with a
    # warning, and those groups are left out of the exactness check.
    # (Layers named automatically have other names in the second model.)
    resizable = unit_groups(model64, resizable_only=True)
    inexact = {id(g) for g in model_zoo.inexact_growth_groups(model64, resizable)}
    growth = {g.layers[0]: 2 for g in resizable if id(g) not in inexact}
    assert growth
    widths = {layer: model_zoo.unit_width(model64, layer) for layer in growth}
    grown = darn.add_units(model64, growth, init="zeros_out", seed=0, compile=False)
    assert before.dtype == np.float64
    # Layer by layer, each node fed the original's inputs: rounding is not
    # carried from layer to layer, so the check is as strict as float64
    # allows in every net (the worst node of EfficientNetV2M differs by 2e-13).
    added = {layer: (width, 2) for layer, width in widths.items()}
    worst, where, compared = model_zoo.growth_diff_by_layer(model64, grown, added, x64)
    assert compared >= len(model64.layers) - 1
    assert worst <= 1e-10, (worst, where)
    # End to end where the net does not amplify rounding too much to judge
    # by its logits: one ulp on every kernel (no growth at all) moves them by
    # `floor`, and growth must stay within 100x of it. (EfficientNetV2M's
    # floor is 2e-4: a deep untrained float32 net with random normalization
    # statistics grows its logits to 1e5.)
    floor = model_zoo.rounding_floor(model64, x64)
    if floor <= 1e-5:
        diff = model_zoo.relative_diff(grown(x64, training=False).numpy(), before)
        assert diff <= max(100 * floor, 1e-12), (diff, floor)
    undo = {layer: [width, width + 1] for layer, width in widths.items()}
    back = darn.remove_units(grown, undo, compile=False)
    for original, restored in zip(model64.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(original, restored)


@pytest.mark.parametrize("name", FAST_SAMPLE)
def test_application_sample(name, tmp_path):
    check_application(name, tmp_path)


def test_layer_by_layer_check_sees_a_misplaced_weight():
    model = model_zoo.application("MobileNetV3Small", floatx="float64")
    x = model_zoo.sample_input(model, batch=2).astype("float64")
    groups = unit_groups(model, resizable_only=True)
    growth = {g.layers[0]: 2 for g in groups}
    added = {layer: (model_zoo.unit_width(model, layer), 2) for layer in growth}
    grown = darn.add_units(model, growth, init="zeros_out", seed=0, compile=False)
    worst, _, _ = model_zoo.growth_diff_by_layer(model, grown, added, x)
    assert worst <= 1e-10
    # Two old filters of one convolution trade places, as a wrong index map would do.
    layer = grown.get_layer("expanded_conv_3_expand")
    kernel = layer.kernel.numpy()
    kernel[..., [0, 1]] = kernel[..., [1, 0]]
    layer.kernel.assign(kernel)
    worst, where, _ = model_zoo.growth_diff_by_layer(model, grown, added, x)
    assert worst > 1e-3 and where == "expanded_conv_3_expand", (worst, where)


@pytest.mark.slow
@pytest.mark.parametrize("name", model_zoo.APPLICATIONS)
def test_application_zoo(name, tmp_path):
    check_application(name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ResNet50", "MobileNetV2", "DenseNet121", "EfficientNetB0"])
def test_application_net2net_growth_and_shrink(name):
    model = model_zoo.application(name)
    x = model_zoo.sample_input(model, batch=2)
    before = model(x, training=False).numpy()
    groups = unit_groups(model, resizable_only=True)
    grown = darn.add_units(model, {g.layers[0]: 2 for g in groups}, init="net2net", seed=0)
    assert model_zoo.relative_diff(grown(x, training=False).numpy(), before) <= 1e-5

    dead_model = keras.models.clone_model(model)
    dead_model.set_weights(model.get_weights())
    switched_off = model_zoo.switch_off(dead_model, 0.3)
    dead_before = dead_model(x, training=False).numpy()
    small = darn.shrink(dead_model)
    assert model_zoo.relative_diff(small(x, training=False).numpy(), dead_before) <= 1e-5
    assert darn.count_params(small) == model_zoo.expected_params(dead_model, switched_off)
