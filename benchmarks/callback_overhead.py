"""Benchmark: per-epoch time of the front door's callbacks against the plain model.

One process trains the same small CNN several ways, epoch by epoch, in turns
(the order rotates every round, so a drift of the machine's load hits every
variant alike): the plain Keras model without a callback, and the model
`darn.prepare` returns with its callback for criterion pruning by group
magnitude (`"magnitude"`, the front door's default), by weight L1
(`"weight_l1"`), by activation variance on held-out data
(`"activation_variance"`) and for NodeDrop (`"nodedrop"`); to tell
NodeDrop's callback from its model, also the plain model with NodeDrop's
SoftClampedReLU activations (`"plain_scr"`) and the prepared NodeDrop
model (masks and penalty) without its callback (`"nodedrop_model"`). The pruning
schedules act at every other epoch (`Linear(start=1, end=..., frequency=2)`),
so the measured epochs hold scoring and masking events as a pruning run
does. An epoch's time is taken by a callback listed after the method's
(it includes the method's end-of-epoch work); every `fit` is one epoch with
`initial_epoch` set, Keras' absolute epoch, as the schedules count it. The
first round is not timed (tracing).

The ratio of a variant is the median over rounds of its epoch time divided
by the plain model's epoch time in the same round. Goal: at most 1.15 for
criterion pruning.

Writes `<output_dir>/<name>.json` (config, every epoch time) and
`<name>.md` (the table); `--name` defaults to `callback_overhead`,
`--output_dir` to `benchmarks/results`.

    python benchmarks/callback_overhead.py --quick     # a smoke run, under results/runs/quick
    nice python benchmarks/callback_overhead.py --variants=magnitude,weight_l1,activation_variance \
        --num_train=4096 --rounds=20                   # callback_overhead.{json,md} (~8 min)
    nice python benchmarks/callback_overhead.py --name=callback_overhead_nodedrop
                                                       # every variant (~20 min on 2 busy CPU cores)
    nice python benchmarks/callback_overhead.py --network=mobilenet_v2 --variants=magnitude \
        --num_train=1024 --num_val=0 --rounds=6 --batch_size=64 \
        --name=callback_overhead_mobilenet_v2          # MobileNetV2 at 96x96 (~15 min)
    python benchmarks/callback_overhead.py --render_only [--name=...]   # the table again
"""

import statistics
import time
import warnings

import harness  # noqa: I001  (quiets TensorFlow before it loads)

from absl import app
from absl import flags

import keras
import numpy as np

import keras_darn as darn

VARIANTS_ALL = ("plain", "magnitude", "weight_l1", "activation_variance", "plain_scr", "nodedrop_model", "nodedrop")

harness.define_output_flags("callback_overhead")
harness.define_data_flag()
harness.define_quick_flag()
harness.define_seed_flag()
flags.DEFINE_integer("num_train", 8192, "Training examples.")
flags.DEFINE_integer("num_val", 1024, "Held-out examples the data-based criterion scores on.")
flags.DEFINE_integer("rounds", 10, "Timed rounds (one epoch of every variant each).")
flags.DEFINE_integer("batch_size", 128, "Batch size.")
flags.DEFINE_list("variants", list(VARIANTS_ALL),
                  "Variants to time (plain is always timed: the ratios are to it).")
flags.DEFINE_enum("network", "cnn", ["cnn", "mobilenet_v2"],
                  "cnn: the small CNN on 28x28 images; mobilenet_v2: keras.applications' "
                  "MobileNetV2 (random start) on the images resized to 96x96x3 (only the "
                  "plain, magnitude and weight_l1 variants).")
flags.DEFINE_bool("render_only", False, "Only rewrite the markdown table from the JSON results.")
FLAGS = flags.FLAGS


def cnn(input_shape, activation):
    keras.utils.set_random_seed(FLAGS.seed)
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(16, 3, activation=activation, name="conv1")(inputs)
    x = keras.layers.Conv2D(32, 3, activation=activation, name="conv2")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(64, activation=activation, name="dense")(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="out")(x))


MOBILENET_SIZE = 96
MOBILENET_VARIANTS = ("plain", "magnitude", "weight_l1")


def mobilenet_v2(input_shape):
    keras.utils.set_random_seed(FLAGS.seed)
    return keras.applications.MobileNetV2(weights=None, input_shape=input_shape, classes=10)


def build(variant, input_shape, x_val, y_val, epochs):
    """`(model, callbacks)` of one variant, compiled."""
    schedule = darn.schedules.Linear(start=1, end=max(1, epochs - 2), frequency=2)
    if FLAGS.network == "mobilenet_v2":
        model, callbacks = mobilenet_v2(input_shape), []
        if variant != "plain":
            model, callback = darn.prepare(model, variant, darn.Target(fraction=0.5),
                                           schedule=schedule)
            callbacks = [callback]
    elif variant == "plain":
        model, callbacks = cnn(input_shape, "relu"), []
    elif variant == "plain_scr":
        model, callbacks = cnn(input_shape, darn.layers.soft_clamped_relu), []
    elif variant.startswith("nodedrop"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, callback = darn.prepare(cnn(input_shape, darn.layers.soft_clamped_relu),
                                           "nodedrop", lam=1e-4, input_range=(0, 1))
        # "nodedrop_model": the masked, regularized model without the callback.
        callbacks = [callback] if variant == "nodedrop" else []
    else:
        model, callback = darn.prepare(cnn(input_shape, "relu"), variant, darn.Target(fraction=0.5),
                                       validation_data=(x_val, y_val), schedule=schedule)
        callbacks = [callback]
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    return model, callbacks


def main(argv):
    del argv
    if FLAGS.render_only:
        prefix = harness.result_prefix()
        render(harness.read_json(prefix + ".json"), prefix + ".md")
        return
    harness.apply_quick({"num_train": 1024, "num_val": 256, "rounds": 2})
    unknown = sorted(set(FLAGS.variants) - set(VARIANTS_ALL))
    if unknown:
        raise ValueError(f"Unknown variants {unknown}; known: {list(VARIANTS_ALL)}. "
                         f"Received: --variants={FLAGS.variants}")
    variants = ["plain", *[v for v in VARIANTS_ALL[1:] if v in FLAGS.variants]]
    if FLAGS.network == "mobilenet_v2" and not set(variants) <= set(MOBILENET_VARIANTS):
        raise ValueError(f"--network=mobilenet_v2 times the variants {list(MOBILENET_VARIANTS)}. "
                         f"Received: --variants={FLAGS.variants}")
    dataset, (x, y), _ = harness.load_images(FLAGS.num_train + FLAGS.num_val, 10,
                                             seed=FLAGS.seed, data_dir=FLAGS.data_dir)
    if FLAGS.network == "mobilenet_v2":
        x = harness.as_rgb(x, MOBILENET_SIZE)
    x, y, x_val, y_val = x[: FLAGS.num_train], y[: FLAGS.num_train], x[FLAGS.num_train:], y[FLAGS.num_train:]
    epochs = FLAGS.rounds + 1
    runs = {v: build(v, x.shape[1:], x_val, y_val, epochs) for v in variants}
    timer = harness.epoch_timer()
    seconds = {v: [] for v in variants}
    events = {v: 0 for v in variants}
    started = time.perf_counter()
    for epoch in range(epochs):
        shift = epoch % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            model, callbacks = runs[variant]
            with warnings.catch_warnings():
                # A one-epoch fit between two events warns that its schedule does not act.
                warnings.simplefilter("ignore")
                model.fit(x, y, initial_epoch=epoch, epochs=epoch + 1, batch_size=FLAGS.batch_size,
                          verbose=0, callbacks=[*callbacks, timer])
            events[variant] += len(callbacks[0].events) if callbacks else 0
            if epoch > 0:  # the first round traces the functions
                seconds[variant].append(timer.seconds[0])
        print(f"round {epoch}: " + ", ".join(f"{v} {seconds[v][-1]:.2f}s" for v in variants if seconds[v]))
    summary = {}
    for variant in variants:
        ratios = [t / p for t, p in zip(seconds[variant], seconds["plain"])]
        model, callbacks = runs[variant]
        # Criterion pruning logs its live units; NodeDrop's layers count theirs.
        logged = callbacks[0].history.get("live_units") if callbacks else None
        live = logged[-1] if logged else sum(
            l.active_units for l in model.layers if hasattr(l, "active_units"))
        summary[variant] = {"ratio": statistics.median(ratios), "ratios": ratios,
                            "epoch_s": seconds[variant], "events": events[variant],
                            "live_units": live if callbacks else None}
    result = {
        "config": {"dataset": dataset, "num_train": FLAGS.num_train, "num_val": FLAGS.num_val,
                   "batch_size": FLAGS.batch_size, "rounds": FLAGS.rounds, "seed": FLAGS.seed,
                   "model": ("conv16-conv32-maxpool-dense64-dense10" if FLAGS.network == "cnn"
                             else f"MobileNetV2 at {MOBILENET_SIZE}x{MOBILENET_SIZE}x3"),
                   "machine": harness.describe_machine()},
        "variants": summary,
        "seconds_total": time.perf_counter() - started,
    }
    prefix = harness.result_prefix()
    harness.write_json(prefix + ".json", result)
    render(result, prefix + ".md")


def _paired_ratio(summary, candidate, baseline):
    pairs = zip(summary[candidate]["epoch_s"], summary[baseline]["epoch_s"])
    return statistics.median(c / b for c, b in pairs)


def render(result, path):
    """Writes the markdown table of `result` (the benchmark's JSON) to `path`."""
    config, summary = result["config"], result["variants"]
    rows = []
    for variant, values in summary.items():
        ratios = values["ratios"]
        quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        rows.append([variant, f"{statistics.median(values['epoch_s']):.3f}", f"{values['ratio']:.3f}",
                     f"{quartiles[0]:.2f} to {quartiles[2]:.2f}", values["events"],
                     None if variant.startswith("plain") else values["live_units"]])
    pruning = [v for v in ("magnitude", "weight_l1", "activation_variance") if v in summary]
    goal = max(summary[v]["ratio"] for v in pruning) if pruning else None
    lines = [
        "# Per-epoch time of the front door's callbacks",
        "",
        f"{config['model']}; {config['dataset']}, {config['num_train']} training examples, "
        f"batch {config['batch_size']}, "
        f"{config['rounds']} timed epochs per variant, interleaved in one process "
        f"({config['machine']}). Ratio: median over rounds of the variant's epoch time "
        "over the plain model's in the same round. Pruning events at every other epoch "
        "(target: half the units). The middle half of the per-round ratios shows how much one "
        "round can be off.",
        "",
        *harness.markdown_table(["variant", "median epoch (s)", "ratio to plain", "ratio, middle half",
                                 "events (layer x epoch)", "live units at the end"], rows),
    ]
    if goal is not None:
        lines += ["", f"Goal, criterion pruning at most 1.15x the plain model: "
                      f"{'met' if goal <= 1.15 else 'not met'} ({goal:.3f})."]
    if {"nodedrop", "nodedrop_model", "plain_scr"} <= set(summary):
        lines += [
            "",
            f"NodeDrop: its callback against the same model without it, "
            f"{_paired_ratio(summary, 'nodedrop', 'nodedrop_model'):.3f}x; the plain model with "
            f"NodeDrop's SoftClampedReLU against the ReLU one, "
            f"{_paired_ratio(summary, 'plain_scr', 'plain'):.3f}x (the activation, not the callback, "
            "makes the difference to the ReLU model).",
        ]
    harness.write_markdown(path, lines)
    print("\n".join(lines))

if __name__ == "__main__":
    app.run(main)
