"""Test configuration shared by every keras_darn test.

The CPU is split into two logical devices before TensorFlow initialises, so
that `tf.distribute.MirroredStrategy` tests run with two replicas on a machine
without accelerators.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Shared test helpers (tests/support) import as `support.<module>`.
sys.path.insert(0, os.path.dirname(__file__))

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()],
)


@pytest.fixture
def two_cpu_strategy():
    """A `MirroredStrategy` over the two logical CPU devices.

    Reduction goes through one device: the default collective all-reduce
    reuses instance keys across strategies, so a second strategy in the same
    process that trains a differently sized model fails with "Shape mismatch
    in the collective instance" (tensorflow/tensorflow#62790).
    """
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    assert len(devices) == 2, devices
    return tf.distribute.MirroredStrategy(
        devices, cross_device_ops=tf.distribute.ReductionToOneDevice()
    )


@pytest.fixture(autouse=True)
def _seed_everything():
    import keras

    keras.utils.set_random_seed(1234)
    np.random.seed(1234)
    yield
    keras.backend.clear_session(free_memory=False)
