"""Bad models and bad plans fail loudly, and nothing half-built comes back."""

import keras
import numpy as np
import pytest
from support import model_zoo

import keras_darn as darn


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(4)

    def call(self, x):
        return self.dense(x)


def test_subclassed_model_is_refused():
    model = Subclassed()
    model(np.zeros((1, 3), "float32"))
    with pytest.raises(ValueError, match="subclassed model"):
        darn.remove_units(model, {"dense": [0]})


def test_lambda_in_a_group_that_must_change_is_refused_with_its_name():
    inputs = keras.Input((5,))
    x = keras.layers.Dense(6, name="fc")(inputs)
    x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    with pytest.raises(ValueError, match="Lambda layer 'double'"):
        darn.remove_units(model, {"fc": [0]})


def test_unknown_layer_name_suggests_close_names():
    model = model_zoo.mlp()
    with pytest.raises(ValueError, match=r"No layer named 'fc_1'.*fc1"):
        darn.remove_units(model, {"fc_1": [0]})


@pytest.mark.parametrize(
    "indices, message",
    [([16], "out of range"), ([-1], "out of range"), ([2, 2], "Repeated"), ([], "no unit indices")],
)
def test_bad_indices(indices, message):
    with pytest.raises(ValueError, match=message):
        darn.remove_units(model_zoo.mlp(), {"fc1": indices})


def test_plan_leaving_a_layer_empty_is_refused():
    with pytest.raises(ValueError, match="zero units"):
        darn.remove_units(model_zoo.mlp(), {"fc1": list(range(16))})


def test_model_outputs_are_never_resized():
    with pytest.raises(ValueError, match="model output"):
        darn.remove_units(model_zoo.mlp(), {"logits": [0]})
    with pytest.raises(ValueError, match="model output"):
        darn.add_units(model_zoo.mlp(), {"logits": 1})


def test_layer_without_own_units_is_refused():
    with pytest.raises(ValueError, match="no resizable units"):
        darn.remove_units(model_zoo.conv_bn_relu_flatten(), {"bn1": [0]})


def test_reshape_mixing_channels_fixes_its_units():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(6, name="fc")(inputs)
    x = keras.layers.Reshape((3, 2))(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    with pytest.raises(ValueError, match="mixes the channel axis"):
        darn.remove_units(model, {"fc": [1]})


def test_bad_growth_arguments():
    model = model_zoo.mlp()
    with pytest.raises(ValueError, match="init"):
        darn.add_units(model, {"fc1": 2}, init="copy")
    with pytest.raises(ValueError, match="positive number"):
        darn.add_units(model, {"fc1": 0})
    with pytest.raises(ValueError, match="source indices"):
        darn.add_units(model, {"fc1": 2}, init="net2net", sources={"fc1": [0, 99]})
    with pytest.raises(ValueError, match="non-empty dict"):
        darn.add_units(model, [("fc1", 2)])


def test_failed_rebuild_leaves_the_model_untouched():
    model = model_zoo.mlp()
    weights = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError):
        darn.remove_units(model, {"fc1": [0], "fc2": list(range(10))})
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert model.get_layer("fc1").units == 16


def test_growth_that_breaks_a_grouped_convolutions_groups_is_refused():
    inputs = keras.Input((6, 6, 4))
    x = keras.layers.Conv2D(8, 3, name="pre")(inputs)
    x = keras.layers.Conv2D(8, 1, groups=2, name="grouped")(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    with pytest.raises(ValueError, match="grouped convolution 'grouped'"):
        darn.add_units(model, {"pre": 1})


def test_custom_layer_handler_is_one_registration():
    @keras.saving.register_keras_serializable(package="keras_darn_tests")
    class Scale(keras.layers.Layer):
        def build(self, input_shape):
            self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="scale")

        def call(self, x):
            return x * self.scale

    inputs = keras.Input((5,))
    x = keras.layers.Dense(6, name="fc")(inputs)
    x = Scale(name="scale")(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    with pytest.raises(ValueError, match="no unit handler"):
        darn.remove_units(model, {"fc": [0]})
    darn.graph.register_layer(Scale, handler=darn.graph.PassThroughHandler({"scale": {0: "in"}}))
    model.get_layer("scale").scale.assign(np.arange(6, dtype="float32"))
    smaller = darn.remove_units(model, {"fc": [0, 2]})
    np.testing.assert_array_equal(smaller.get_layer("scale").scale.numpy(), [1, 3, 4, 5])
