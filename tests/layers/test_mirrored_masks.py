"""Masks changed by a callback during `fit` under `tf.distribute.MirroredStrategy`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_darn.layers import PrunableConv2D
from keras_darn.layers import PrunableDense

NEW_MASK = np.array([1, 0, 1, 0, 0, 1], dtype="float32")


class SetMaskAtBatch(keras.callbacks.Callback):
    """Sets `layer`'s unit mask at the end of training batch `batch`."""

    def __init__(self, layer, mask, batch):
        super().__init__()
        self.layer, self.mask, self.batch = layer, mask, batch
        self.kernel_at_switch = None

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.batch:
            self.layer.set_unit_mask(self.mask)
            self.kernel_at_switch = np.array(self.layer.kernel)


@pytest.fixture
def strategy(two_cpu_strategy):
    """The fixture's two replicas, reduced without collective ops.

    TF's collective all-reduce keys restart with every `MirroredStrategy`, so
    a second strategy in the same process that trains a model of another size
    aborts with "Shape mismatch in the collective instance 100".
    `ReductionToOneDevice` keeps mirrored variables and per-replica execution
    identical and avoids the collision.
    """
    return tf.distribute.MirroredStrategy(
        two_cpu_strategy.extended.worker_devices,
        cross_device_ops=tf.distribute.ReductionToOneDevice(),
    )


def build_model(kind):
    if kind == "dense":
        layer = PrunableDense(6, activation="sigmoid", bias_initializer="ones")
        inputs = keras.Input((5,))
        x = np.random.uniform(size=(32, 5)).astype("float32")
    else:
        layer = PrunableConv2D(6, 3, activation="sigmoid", bias_initializer="ones")
        inputs = keras.Input((5, 5, 2))
        x = np.random.uniform(size=(32, 5, 5, 2)).astype("float32")
    hidden = layer(inputs)
    outputs = keras.layers.Dense(1)(keras.layers.Flatten()(hidden))
    return keras.Model(inputs, outputs), layer, x


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_callback_mask_change_reaches_every_replica(kind, strategy):
    with strategy.scope():
        model, layer, x = build_model(kind)
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    assert isinstance(layer.unit_mask.value, tf.distribute.DistributedValues)
    callback = SetMaskAtBatch(layer, NEW_MASK, batch=1)
    y = np.random.uniform(size=(len(x), 1)).astype("float32")
    model.fit(x, y, batch_size=8, epochs=1, callbacks=[callback], verbose=0)

    # Every replica's copy of the mask holds the new value.
    replica_masks = strategy.experimental_local_results(layer.unit_mask.value)
    assert len(replica_masks) == 2
    for replica_mask in replica_masks:
        np.testing.assert_array_equal(replica_mask.numpy(), NEW_MASK)

    # Both replicas trained with the new mask after the switch: the summed
    # gradient of the masked units was exactly zero, so (plain SGD) their
    # weights did not move during the two batches that followed.
    kernel = np.array(layer.kernel)
    for unit in np.flatnonzero(NEW_MASK == 0):
        np.testing.assert_array_equal(
            kernel[..., unit], callback.kernel_at_switch[..., unit]
        )
    for unit in np.flatnonzero(NEW_MASK == 1):
        assert np.any(kernel[..., unit] != callback.kernel_at_switch[..., unit])

    # A per-replica forward pass sees the mask on each device.
    hidden_model = keras.Model(model.input, layer.output)
    dataset = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices(x).batch(8)
    )
    per_replica = strategy.run(
        tf.function(hidden_model), args=(next(iter(dataset)),)
    )
    replica_outputs = strategy.experimental_local_results(per_replica)
    assert len(replica_outputs) == 2
    for output in replica_outputs:
        output = output.numpy()
        assert output.shape[0] == 4
        for unit in range(len(NEW_MASK)):
            if NEW_MASK[unit] == 0:
                assert np.all(output[..., unit] == 0.0)
            else:
                assert np.all(output[..., unit] > 0.0)
