"""AgeAwareAdam: Adam for a fixed net, fresh-Adam steps for the weights of new units."""

import keras
import numpy as np
from support import model_zoo

import keras_darn as darn
from keras_darn.methods.growth.optimizers import AgeAwareAdam

LR = 1e-2


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(64, 12)).astype("float32"), rng.integers(0, 3, 64)


def _trained(optimizer, epochs=2):
    keras.utils.set_random_seed(0)
    model = model_zoo.mlp()
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data()
    model.fit(x, y, epochs=epochs, batch_size=16, shuffle=False, verbose=0)
    return model


def _age(model, layer):
    optimizer = model.optimizer
    return optimizer._ages[optimizer._get_variable_index(model.get_layer(layer).kernel)].numpy()


def test_matches_adam_when_no_weight_is_new():
    adam = _trained(keras.optimizers.Adam(LR))
    aged = _trained(AgeAwareAdam(LR))
    for a, b in zip(adam.get_weights(), aged.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert np.all(_age(aged, "fc1") == 8)  # 2 epochs x 4 batches


def test_new_weights_start_at_age_zero_and_take_fresh_adam_steps():
    model = _trained(AgeAwareAdam(LR))
    grown = darn.add_units(model, {"fc1": 3}, seed=0)
    assert isinstance(grown.optimizer, AgeAwareAdam)
    ages = _age(grown, "fc2")  # rows = fc1's units, the last 3 new
    np.testing.assert_array_equal(ages[:16], 8)
    np.testing.assert_array_equal(ages[16:], 0)
    before = grown.get_layer("fc2").kernel.numpy()
    x, y = _data()
    grown.fit(x[:16], y[:16], epochs=1, batch_size=16, shuffle=False, verbose=0)
    step = np.abs(grown.get_layer("fc2").kernel.numpy() - before)[16:]
    # A fresh Adam's first step is lr * g / (|g| + eps / sqrt(1 - beta_2)) ~ lr
    # wherever the gradient is not tiny (plain Adam, at global step 9: ~0.49 lr).
    moved = step[step > 1e-6]
    assert moved.size > 0
    np.testing.assert_array_less(moved, LR * (1 + 1e-4))
    assert np.median(moved) > 0.9 * LR
    np.testing.assert_array_equal(_age(grown, "fc2")[16:], 1)


def test_survives_save_and_load_with_its_ages(tmp_path):
    model = _trained(AgeAwareAdam(LR))
    grown = darn.add_units(model, {"fc1": 2}, seed=0)
    x, y = _data()
    grown.fit(x, y, epochs=1, batch_size=16, verbose=0)
    path = str(tmp_path / "grown.keras")
    grown.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.optimizer, AgeAwareAdam)
    np.testing.assert_array_equal(_age(loaded, "fc2"), _age(grown, "fc2"))
    config = AgeAwareAdam(3e-3, beta_1=0.8).get_config()
    assert AgeAwareAdam.from_config(config).beta_1 == 0.8
