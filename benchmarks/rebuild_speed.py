"""How fast the Rebuilder removes 30 % of every resizable group.

For `ResNet50`, `DenseNet121` and `MobileNetV2` (weights=None) the time of
`keras_darn.remove_units` (tracing the unit graph, planning, cloning at the
new widths, copying every surviving weight) is compared, in the same process,
with the plain Keras baseline `keras.models.clone_model(model)` followed by
`set_weights` of the same model. A family of plain CNNs of growing depth shows
how the time scales with the number of layers.

Usage:
    python benchmarks/rebuild_speed.py [--repeats=3] [--quick]

Writes `<output_dir>/<name>.json`, `<name>.md` and `<name>.png` (`--name`,
default `rebuild_speed`; `--output_dir`, default `benchmarks/results`).
"""

import harness  # noqa: F401  (benchmarks/harness/; first: quiets TensorFlow)

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_darn as darn  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("repeats", 3, "Timed repeats per measurement (median reported).")
flags.DEFINE_integer("input_size", 64, "Spatial input size of the applications.")
flags.DEFINE_list("depths", ["8", "16", "32", "64"], "Conv blocks of the depth-scaling family.")
flags.DEFINE_list("applications", ["ResNet50", "DenseNet121", "MobileNetV2"],
                  "keras.applications models timed (weights=None).")
harness.define_output_flags("rebuild_speed")
harness.define_quick_flag()


def removal_plan(model, fraction=0.3, seed=0):
    """30 % of every resizable group, chosen at random."""
    rng = np.random.default_rng(seed)
    plan = {}
    for group in darn.unit_groups(model, resizable_only=True):
        count = int(fraction * group.size)
        if count:
            name = group.layers[0]
            plan[name] = sorted(group.indices(name)[rng.choice(group.size, count, replace=False)].tolist())
    return plan


def clone_baseline(model):
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def median_seconds(function, repeats):
    return harness.median_seconds(function, repeats,
                                  setup=lambda: keras.backend.clear_session(free_memory=False))


def deep_cnn(blocks):
    """A plain CNN with `blocks` Conv-BN-ReLU blocks (3 layers each)."""
    inputs = keras.Input((16, 16, 3))
    x = inputs
    for i in range(blocks):
        x = keras.layers.Conv2D(16, 3, padding="same", name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x))


def measure(model, repeats):
    plan = removal_plan(model)
    rebuild = median_seconds(lambda: darn.remove_units(model, plan, compile=False), repeats)
    baseline = median_seconds(lambda: clone_baseline(model), repeats)
    pruned = darn.remove_units(model, plan, compile=False)
    return {
        "layers": len(model.layers),
        "params_before": darn.count_params(model),
        "params_after": darn.count_params(pruned),
        "rebuild_s": rebuild,
        "clone_set_weights_s": baseline,
        "ratio": rebuild / baseline,
    }


def main(_):
    harness.apply_quick({"repeats": 1, "applications": ["MobileNetV2"], "depths": ["2", "4"],
                         "input_size": 32})
    prefix = harness.result_prefix()
    size = FLAGS.input_size
    results = {"applications": {}, "depth_scaling": {}, "repeats": FLAGS.repeats}
    for name in FLAGS.applications:
        model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3), classes=10)
        results["applications"][name] = measure(model, FLAGS.repeats)
        print(name, results["applications"][name], flush=True)
    for blocks in map(int, FLAGS.depths):
        results["depth_scaling"][blocks] = measure(deep_cnn(blocks), FLAGS.repeats)
        print("deep_cnn", blocks, results["depth_scaling"][blocks], flush=True)
    layers = np.array([r["layers"] for r in results["depth_scaling"].values()], dtype=float)
    seconds = np.array([r["rebuild_s"] for r in results["depth_scaling"].values()])
    slope, intercept = np.polyfit(layers, seconds, 1)
    fitted = slope * layers + intercept
    r_squared = 1 - ((seconds - fitted) ** 2).sum() / ((seconds - seconds.mean()) ** 2).sum()
    results["linear_fit"] = {"seconds_per_layer": slope, "intercept_s": intercept, "r_squared": r_squared}
    results["machine"] = harness.describe_machine()
    harness.write_json(prefix + ".json", results)
    harness.write_markdown(prefix + ".md", markdown(results))
    plot(results, prefix + ".png")


def markdown(results):
    lines = [
        "# Rebuild speed: remove 30 % of every resizable group",
        "",
        f"Median of {results['repeats']} runs; baseline = `keras.models.clone_model` + `set_weights`"
        " of the same model, same process. Produced by `python benchmarks/rebuild_speed.py`.",
        "",
    ]
    models = list(results["applications"].items()) + [
        (f"deep CNN, {k} blocks", v) for k, v in results["depth_scaling"].items()
    ]
    lines += harness.markdown_table(
        ["model", "layers", "params before", "params after", "remove_units (s)",
         "clone+set_weights (s)", "ratio"],
        [
            [name, r["layers"], f"{r['params_before']:,}", f"{r['params_after']:,}",
             f"{r['rebuild_s']:.2f}", f"{r['clone_set_weights_s']:.2f}", f"{r['ratio']:.2f}x"]
            for name, r in models
        ],
    )
    fit = results["linear_fit"]
    lines += [
        "",
        f"Depth scaling: {fit['seconds_per_layer'] * 1000:.1f} ms per layer + {fit['intercept_s']:.2f} s, "
        f"R^2 = {fit['r_squared']:.4f} (linear fit over the deep-CNN family).",
    ]
    return lines


def plot(results, path):
    depth = results["depth_scaling"]
    layers = [r["layers"] for r in depth.values()]
    fig, (ax,) = harness.figure(width=6, height=4)
    ax.plot(layers, [r["rebuild_s"] for r in depth.values()], "o-", label="remove_units (30 %)")
    ax.plot(layers, [r["clone_set_weights_s"] for r in depth.values()], "s--", label="clone_model + set_weights")
    for name, r in results["applications"].items():
        ax.plot(r["layers"], r["rebuild_s"], "k^")
        ax.annotate(name, (r["layers"], r["rebuild_s"]), fontsize=8)
    harness.label_axes(ax, "layers in the model", "wall-clock time (s, median)",
                       title="Rebuild time against depth")
    harness.save_figure(fig, path, dpi=120)


if __name__ == "__main__":
    app.run(main)
