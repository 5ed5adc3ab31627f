"""`benchmarks/adaptive_rate.py`: the stacked fold networks of the pooled digits protocol."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))

import adaptive_rate as bench  # noqa: E402  (benchmarks/adaptive_rate.py)


def test_stacked_networks_train_as_each_alone():
    rng = np.random.default_rng(0)
    xs = [rng.uniform(0, 1, (32, 6)).astype("float32") for _ in range(2)]
    ys = [rng.integers(0, 10, 32) for _ in range(2)]
    stacked = bench.build_model(6, nets=2)
    alone = bench.build_model(6)
    for width in (*bench.WIDTHS, "out"):
        name = f"h{width}" if width != "out" else "out"
        alone.get_layer(name).set_weights(stacked.get_layer(f"f1_{name}").get_weights())
    initial = np.array(stacked.get_layer("f1_h80").kernel)
    bench.compile_adam(stacked, 1e-2)
    bench.compile_adam(alone, 1e-2)
    stacked.fit(xs, ys, epochs=2, batch_size=8, shuffle=False, verbose=0)
    alone.fit(xs[1], ys[1], epochs=2, batch_size=8, shuffle=False, verbose=0)
    for width in bench.WIDTHS:
        np.testing.assert_allclose(
            stacked.get_layer(f"f1_h{width}").kernel, alone.get_layer(f"h{width}").kernel,
            rtol=1e-5, atol=1e-6,
        )
    # Training moved the weights: the comparison is not between untouched copies.
    assert np.abs(np.asarray(stacked.get_layer("f1_h80").kernel) - initial).max() > 1e-3


def test_pooled_evaluator_counts_every_real_image_once():
    rng = np.random.default_rng(1)
    model = bench.build_model(6, nets=2)
    x_tests = [rng.uniform(0, 1, (5, 6)).astype("float32") for _ in range(2)]
    x_tests[1][3:] = 0.0  # network 1's fold has 3 images, padded to 5
    outputs = [np.asarray(o) for o in model(x_tests, training=False)]
    predicted = [o.argmax(axis=-1) for o in outputs]
    # Labels: network 0 right on images 0-2, wrong on 3-4; network 1 right on 0 only.
    y0 = np.concatenate([predicted[0][:3], (predicted[0][3:] + 1) % 10])
    y1 = np.concatenate([predicted[1][:1], (predicted[1][1:3] + 1) % 10])
    evaluate = bench.pooled_evaluator(x_tests, [y0, y1])
    assert evaluate(model) == 4 / 8
