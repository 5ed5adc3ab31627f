"""A rebuild that changes nothing is bit-exact for every layer class Keras ships.

Every class in `keras.layers` (found by enumeration, aliases counted once) is
either built into a small functional model here, or named in `SKIPPED`
with the reason it cannot stand in one. The model is rebuilt with nothing
queued; its outputs and weights must come back bit for bit.
"""

import collections
import inspect

import keras
import numpy as np
import pytest

import keras_darn as darn

L = keras.layers

SEQ, IMAGE, VOLUME = (6, 3), (8, 8, 3), (4, 4, 4, 2)
AUDIO = (256,)
VOCAB = ["red", "green", "blue"]


Case = collections.namedtuple("Case", "layer_fn shapes call dtype")


def _value_range(cls, **kwargs):
    return lambda: cls(value_range=(0, 1), **kwargs)


def _one(layer_fn, shape=SEQ, dtype="float32"):
    return Case(layer_fn, [shape], "one", dtype)


def _two(layer_fn, shape=SEQ, call="args", dtype="float32"):
    """A case whose layer takes two tensors: as arguments, a list or a tuple."""
    return Case(layer_fn, [shape, shape], call, dtype)


def _cell(cell_fn):
    return Case(lambda: L.RNN(cell_fn()), [SEQ], "one", "float32")


CASES = {
    "Activation": _one(lambda: L.Activation("tanh")),
    "ActivityRegularization": _one(lambda: L.ActivityRegularization(l1=0.1)),
    "AdaptiveAveragePooling1D": _one(lambda: L.AdaptiveAveragePooling1D(3)),
    "AdaptiveAveragePooling2D": _one(lambda: L.AdaptiveAveragePooling2D(2), IMAGE),
    "AdaptiveAveragePooling3D": _one(lambda: L.AdaptiveAveragePooling3D(2), VOLUME),
    "AdaptiveMaxPooling1D": _one(lambda: L.AdaptiveMaxPooling1D(3)),
    "AdaptiveMaxPooling2D": _one(lambda: L.AdaptiveMaxPooling2D(2), IMAGE),
    "AdaptiveMaxPooling3D": _one(lambda: L.AdaptiveMaxPooling3D(2), VOLUME),
    "Add": _two(L.Add, call="list"),
    "AdditiveAttention": _two(L.AdditiveAttention, call="list"),
    "AlphaDropout": _one(lambda: L.AlphaDropout(0.2)),
    "Attention": _two(L.Attention, call="list"),
    "AugMix": _one(_value_range(L.AugMix), IMAGE),
    "AutoContrast": _one(_value_range(L.AutoContrast), IMAGE),
    "Average": _two(L.Average, call="list"),
    "AveragePooling1D": _one(lambda: L.AveragePooling1D(2)),
    "AveragePooling2D": _one(lambda: L.AveragePooling2D(2), IMAGE),
    "AveragePooling3D": _one(lambda: L.AveragePooling3D(2), VOLUME),
    "BatchNormalization": _one(L.BatchNormalization),
    "Bidirectional": _one(lambda: L.Bidirectional(L.LSTM(3))),
    "CategoryEncoding": _one(lambda: L.CategoryEncoding(6, output_mode="multi_hot"), (3,), "int32"),
    "CenterCrop": _one(lambda: L.CenterCrop(4, 4), IMAGE),
    "Concatenate": _two(L.Concatenate, call="list"),
    "ContrastLimitedAdaptiveHistogramEqualization": _one(
        lambda: L.ContrastLimitedAdaptiveHistogramEqualization(value_range=(0, 255), tile_grid_size=(2, 2)),
        IMAGE,
    ),
    "Conv1D": _one(lambda: L.Conv1D(4, 3)),
    "Conv1DTranspose": _one(lambda: L.Conv1DTranspose(4, 3)),
    "Conv2D": _one(lambda: L.Conv2D(4, 3), IMAGE),
    "Conv2DTranspose": _one(lambda: L.Conv2DTranspose(4, 3), IMAGE),
    "Conv3D": _one(lambda: L.Conv3D(3, 2), VOLUME),
    "Conv3DTranspose": _one(lambda: L.Conv3DTranspose(3, 2), VOLUME),
    "ConvLSTM1D": _one(lambda: L.ConvLSTM1D(2, 3), (3, 5, 2)),
    "ConvLSTM2D": _one(lambda: L.ConvLSTM2D(2, 3), (3, 5, 5, 2)),
    "ConvLSTM3D": _one(lambda: L.ConvLSTM3D(2, 2), (2, 3, 3, 3, 2)),
    "Cropping1D": _one(lambda: L.Cropping1D(1)),
    "Cropping2D": _one(lambda: L.Cropping2D(1), IMAGE),
    "Cropping3D": _one(lambda: L.Cropping3D(1), VOLUME),
    "CutMix": _one(L.CutMix, IMAGE),
    "Dense": _one(lambda: L.Dense(4)),
    "DepthwiseConv1D": _one(lambda: L.DepthwiseConv1D(3, depth_multiplier=2)),
    "DepthwiseConv2D": _one(lambda: L.DepthwiseConv2D(3), IMAGE),
    "Discretization": _one(lambda: L.Discretization(bin_boundaries=[0.3, 0.6])),
    "Dot": _two(lambda: L.Dot(axes=-1), call="list"),
    "Dropout": _one(lambda: L.Dropout(0.5)),
    "ELU": _one(L.ELU),
    "EinsumDense": _one(lambda: L.EinsumDense("abc,cd->abd", output_shape=(None, 4), bias_axes="d")),
    "Embedding": _one(lambda: L.Embedding(10, 4), (5,), "int32"),
    "Flatten": _one(L.Flatten),
    "GRU": _one(lambda: L.GRU(3, return_sequences=True)),
    "GRUCell": _cell(lambda: L.GRUCell(3)),
    "GaussianDropout": _one(lambda: L.GaussianDropout(0.3)),
    "GaussianNoise": _one(lambda: L.GaussianNoise(0.3)),
    "GlobalAveragePooling1D": _one(L.GlobalAveragePooling1D),
    "GlobalAveragePooling2D": _one(L.GlobalAveragePooling2D, IMAGE),
    "GlobalAveragePooling3D": _one(L.GlobalAveragePooling3D, VOLUME),
    "GlobalMaxPooling1D": _one(L.GlobalMaxPooling1D),
    "GlobalMaxPooling2D": _one(L.GlobalMaxPooling2D, IMAGE),
    "GlobalMaxPooling3D": _one(L.GlobalMaxPooling3D, VOLUME),
    "GroupNormalization": _one(lambda: L.GroupNormalization(groups=3), IMAGE),
    "GroupedQueryAttention": _two(lambda: L.GroupQueryAttention(4, 4, 2), (5, 8)),
    "HashedCrossing": _two(lambda: L.HashedCrossing(num_bins=7), (1,), "tuple", "int32"),
    "Hashing": _one(lambda: L.Hashing(num_bins=5), (3,), "int32"),
    "Identity": _one(L.Identity),
    "IntegerLookup": _one(lambda: L.IntegerLookup(vocabulary=[1, 2, 3]), (3,), "int32"),
    "LSTM": _one(lambda: L.LSTM(3)),
    "LSTMCell": _cell(lambda: L.LSTMCell(3)),
    "Lambda": _one(lambda: L.Lambda(lambda x: x * 2.0 + 1.0, output_shape=SEQ)),
    "LayerNormalization": _one(L.LayerNormalization),
    "LeakyReLU": _one(lambda: L.LeakyReLU(0.2)),
    "Masking": _one(lambda: L.Masking(0.0)),
    "MaxPooling1D": _one(lambda: L.MaxPooling1D(2)),
    "MaxPooling2D": _one(lambda: L.MaxPooling2D(2), IMAGE),
    "MaxPooling3D": _one(lambda: L.MaxPooling3D(2), VOLUME),
    "Maximum": _two(L.Maximum, call="list"),
    "MelSpectrogram": _one(
        lambda: L.MelSpectrogram(fft_length=64, sequence_stride=32, sequence_length=64, num_mel_bins=8),
        AUDIO,
    ),
    "Minimum": _two(L.Minimum, call="list"),
    "MixUp": _one(L.MixUp, IMAGE),
    "MultiHeadAttention": _two(lambda: L.MultiHeadAttention(2, 3)),
    "Multiply": _two(L.Multiply, call="list"),
    "Normalization": _one(lambda: L.Normalization(mean=0.5, variance=2.0)),
    "PReLU": _one(L.PReLU),
    "Permute": _one(lambda: L.Permute((2, 1))),
    "Pipeline": _one(lambda: L.Pipeline([L.Rescaling(2.0), L.CenterCrop(4, 4)]), IMAGE),
    "RMSNormalization": _one(L.RMSNormalization),
    "RNN": _one(lambda: L.RNN(L.SimpleRNNCell(3), return_sequences=True)),
    "RandAugment": _one(_value_range(L.RandAugment), IMAGE),
    "RandomBrightness": _one(lambda: L.RandomBrightness(0.2, value_range=(0, 1)), IMAGE),
    "RandomColorDegeneration": _one(lambda: L.RandomColorDegeneration(0.5), IMAGE),
    "RandomColorJitter": _one(_value_range(L.RandomColorJitter), IMAGE),
    "RandomContrast": _one(lambda: L.RandomContrast(0.3), IMAGE),
    "RandomCrop": _one(lambda: L.RandomCrop(4, 4), IMAGE),
    "RandomElasticTransform": _one(_value_range(L.RandomElasticTransform), IMAGE),
    "RandomErasing": _one(_value_range(L.RandomErasing), IMAGE),
    "RandomFlip": _one(L.RandomFlip, IMAGE),
    "RandomGaussianBlur": _one(_value_range(L.RandomGaussianBlur), IMAGE),
    "RandomGrayscale": _one(L.RandomGrayscale, IMAGE),
    "RandomHue": _one(lambda: L.RandomHue(0.3, value_range=(0, 1)), IMAGE),
    "RandomInvert": _one(_value_range(L.RandomInvert), IMAGE),
    "RandomPerspective": _one(L.RandomPerspective, IMAGE),
    "RandomPosterization": _one(lambda: L.RandomPosterization(4, value_range=(0, 1)), IMAGE),
    "RandomRotation": _one(lambda: L.RandomRotation(0.2), IMAGE),
    "RandomSaturation": _one(lambda: L.RandomSaturation(0.3, value_range=(0, 1)), IMAGE),
    "RandomSharpness": _one(lambda: L.RandomSharpness(0.3, value_range=(0, 1)), IMAGE),
    "RandomTranslation": _one(lambda: L.RandomTranslation(0.2, 0.2), IMAGE),
    "RandomZoom": _one(lambda: L.RandomZoom(0.2), IMAGE),
    "ReLU": _one(L.ReLU),
    "RepeatVector": _one(lambda: L.RepeatVector(3), (4,)),
    "Rescaling": _one(lambda: L.Rescaling(0.5, offset=1.0)),
    "Reshape": _one(lambda: L.Reshape((3, 6))),
    "Resizing": _one(lambda: L.Resizing(4, 4), IMAGE),
    "ReversibleEmbedding": _one(lambda: L.ReversibleEmbedding(10, 4), (5,), "int32"),
    "STFTSpectrogram": _one(lambda: L.STFTSpectrogram(frame_length=32, frame_step=16, fft_length=32), (128, 1)),
    "SeparableConv1D": _one(lambda: L.SeparableConv1D(4, 3, depth_multiplier=2)),
    "SeparableConv2D": _one(lambda: L.SeparableConv2D(4, 3), IMAGE),
    "SimpleRNN": _one(lambda: L.SimpleRNN(3)),
    "SimpleRNNCell": _cell(lambda: L.SimpleRNNCell(3)),
    "Softmax": _one(L.Softmax),
    "Solarization": _one(lambda: L.Solarization(0.5, value_range=(0, 1)), IMAGE),
    "SpatialDropout1D": _one(lambda: L.SpatialDropout1D(0.3)),
    "SpatialDropout2D": _one(lambda: L.SpatialDropout2D(0.3), IMAGE),
    "SpatialDropout3D": _one(lambda: L.SpatialDropout3D(0.3), VOLUME),
    "SpectralNormalization": _one(lambda: L.SpectralNormalization(L.Dense(4))),
    "StackedRNNCells": _cell(lambda: L.StackedRNNCells([L.LSTMCell(3), L.GRUCell(2)])),
    "StringLookup": _one(lambda: L.StringLookup(vocabulary=VOCAB), (3,), "string"),
    "Subtract": _two(L.Subtract, call="list"),
    "TextVectorization": _one(lambda: L.TextVectorization(vocabulary=VOCAB, output_sequence_length=4), (), "string"),
    "TimeDistributed": _one(lambda: L.TimeDistributed(L.Dense(4))),
    "UnitNormalization": _one(L.UnitNormalization),
    "UpSampling1D": _one(L.UpSampling1D),
    "UpSampling2D": _one(L.UpSampling2D, IMAGE),
    "UpSampling3D": _one(L.UpSampling3D, VOLUME),
    "ZeroPadding1D": _one(L.ZeroPadding1D),
    "ZeroPadding2D": _one(L.ZeroPadding2D, IMAGE),
    "ZeroPadding3D": _one(L.ZeroPadding3D, VOLUME),
}

SKIPPED = {
    "Layer": "the abstract base class; its subclasses are the cases",
    "Wrapper": "an abstract base class; Bidirectional, TimeDistributed and SpectralNormalization are the cases",
    "InputLayer": "it is the model input itself, present in every case",
    "FlaxLayer": "wraps a Flax module; needs the JAX backend",
    "JaxLayer": "wraps a JAX function; needs the JAX backend",
    "TorchModuleWrapper": "wraps a torch.nn.Module; needs the PyTorch backend",
    "TFSMLayer": "reloads a SavedModel endpoint; its variables belong to the SavedModel, not to a layer config",
    "MaxNumBoundingBoxes": "transforms bounding-box dictionaries, which no functional model input holds",
    "Equalization": "called on a symbolic tensor it returns that tensor itself, so Keras cannot build "
    "a functional model around it ('is part of a cycle')",
    "RandomShear": "Keras cannot rebuild it from its own config (its get_config gives "
    "x_factor=(-0.2, 0.2), which its constructor rejects), so no config-based copy works",
}


def keras_layer_classes():
    """Names of every layer class `keras.layers` exports (aliases once)."""
    classes = {
        obj for obj in vars(keras.layers).values()
        if inspect.isclass(obj) and issubclass(obj, keras.layers.Layer)
    }
    return sorted(cls.__name__ for cls in classes)


def test_every_keras_layer_class_is_covered_or_skipped_with_a_reason():
    names = set(keras_layer_classes())
    assert not set(CASES) & set(SKIPPED)
    missing = names - set(CASES) - set(SKIPPED)
    assert not missing, f"keras.layers classes neither tested nor skipped: {sorted(missing)}"
    assert set(CASES) | set(SKIPPED) == names
    print("Skipped keras.layers classes:")
    for name, reason in sorted(SKIPPED.items()):
        print(f"  {name}: {reason}")


def _sample(shape, dtype, rng):
    shape = (3,) + tuple(shape)
    if dtype == "string":
        return np.array(rng.choice(VOCAB + ["other"], size=shape), dtype=object)
    if dtype == "int32":
        return rng.integers(1, 4, size=shape).astype("int32")
    return rng.random(shape).astype("float32")


def _model(name):
    case = CASES[name]
    inputs = [keras.Input(shape, dtype=case.dtype) for shape in case.shapes]
    layer = case.layer_fn()
    if case.call == "one":
        outputs = layer(inputs[0])
    elif case.call == "list":
        outputs = layer(list(inputs))
    elif case.call == "tuple":
        outputs = layer(tuple(inputs))
    else:
        outputs = layer(*inputs)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    data = [_sample(shape, case.dtype, rng) for shape in case.shapes]
    for weight in model.weights:  # non-default values, so a mix-up shows
        if weight.dtype.startswith("float") and weight.trainable:
            weight.assign(rng.normal(size=tuple(weight.shape)).astype(weight.dtype) * 0.3)
    return model, data


@pytest.mark.parametrize("name", sorted(CASES))
def test_rebuild_changing_nothing_is_bit_exact(name):
    model, data = _model(name)
    before = keras.tree.map_structure(keras.ops.convert_to_numpy, model(data, training=False))
    rebuilt = darn.Rebuilder(model).build()
    after = keras.tree.map_structure(keras.ops.convert_to_numpy, rebuilt(data, training=False))
    for a, b in zip(keras.tree.flatten(before), keras.tree.flatten(after)):
        np.testing.assert_array_equal(a, b)
    assert len(model.weights) == len(rebuilt.weights)
    for a, b in zip(model.weights, rebuilt.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
