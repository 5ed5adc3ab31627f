"""Benchmark: Standout pruning (Dutta & Mitra) on Fashion-MNIST, paper Table 2.

Arms, for ReLU and LeakyReLU (slope 0.01, PyTorch's default, in every layer),
each over several seeds:

- `pruned-W`: the paper's CNN (Table 1, left) with a 512-unit FC layer made a
  `StandoutDense` and pruned to W units through the front door
  (`darn.prepare(model, "standout", darn.Target(units=W),
  schedule=darn.schedules.Geometric(gamma, every=P))`); SGD with momentum
  until W is reached, one more period of SGD, then Adam.
- `fixed-W`: the same CNN with a plain W-unit FC layer from the start; SGD for
  `fixed_sgd_periods` periods (the paper's 100 epochs = 4 periods of 25), then
  Adam; same total epochs.
- `dropout-512`: the same CNN with FC-512 and dropout 0.5, trained like
  `fixed-W`.

For every run the test accuracy is measured after every epoch; the tables
report the best (as the paper's Table 2) and the final accuracy per arm, mean
and spread over seeds. All arms see the same training and test subsets, and
for one seed the convolutional layers start from the same weights.

Writes `<output_dir>/<name>.json` (config, every run's curves, summary),
`<name>.md` (tables) and `<name>_accuracy.png` / `<name>_loss.png` (`--name`,
default `standout`; `--output_dir`, default `benchmarks/results`).

    PYTHONPATH=. python benchmarks/standout.py   # the defaults: ~35 min on 2 shared CPU cores
    PYTHONPATH=. python benchmarks/standout.py --quick
"""

import os
import time

import harness  # noqa: F401  (benchmarks/harness/; first: quiets TensorFlow)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

import keras_darn as darn  # noqa: E402
from keras_darn.methods.standout import standout_units_to_remove  # noqa: E402

FLAGS = flags.FLAGS
harness.define_data_flag()
flags.DEFINE_integer("num_train", 1000, "Training examples (stratified subset, seed 0).")
flags.DEFINE_integer("num_test", 1000, "Test examples (stratified subset, seed 0).")
flags.DEFINE_integer("epochs", 12, "Total epochs of every run (the paper: 525 = 21 periods of 25).")
flags.DEFINE_integer("period", 1, "Pruning period P in epochs (the paper: 25).")
flags.DEFINE_float("gamma", 0.5, "Pruning ratio gamma (the paper: 0.5).")
flags.DEFINE_integer("start_width", 512, "FC width before pruning.")
flags.DEFINE_list("widths", ["16", "32", "64", "128"], "Target / fixed FC widths.")
flags.DEFINE_list("activations", ["relu", "leaky_relu"], "Activations.")
harness.define_seeds_flag([0, 1, 2])
flags.DEFINE_float("alpha", 1.0, "Standout alpha.")
flags.DEFINE_float("beta", 0.0, "Standout beta.")
flags.DEFINE_float("dropout", 0.5, "Dropout rate of the FC-512 arm.")
flags.DEFINE_integer("fixed_sgd_periods", 4, "SGD periods of the fixed and dropout arms.")
flags.DEFINE_integer("batch_size", 32, "Batch size.")
flags.DEFINE_float("sgd_lr", 0.01, "SGD learning rate (momentum 0.9).")
flags.DEFINE_float("adam_lr", 1e-3, "Adam learning rate (PyTorch's default).")
harness.define_output_flags("standout")
harness.define_quick_flag()
flags.DEFINE_bool("render_only", False, "Rewrite the markdown and plots from "
                  "`<output_dir>/<name>.json` without training.")
flags.DEFINE_float("max_minutes", None, "Start no new run after this many minutes; the "
                   "results then cover the runs done (and say so).")

# Best of the 10 highest accuracies in the paper's Table 2 (mean of 5 runs,
# 525 epochs, full Fashion-MNIST).
PAPER_TABLE_2 = {
    ("relu", "fixed", 16): 0.91784, ("relu", "pruned", 16): 0.92016,
    ("leaky_relu", "fixed", 16): 0.91966, ("leaky_relu", "pruned", 16): 0.92078,
    ("relu", "fixed", 32): 0.91936, ("relu", "pruned", 32): 0.92142,
    ("leaky_relu", "fixed", 32): 0.91984, ("leaky_relu", "pruned", 32): 0.92154,
    ("relu", "fixed", 64): 0.9205, ("relu", "pruned", 64): 0.92002,
    ("leaky_relu", "fixed", 64): 0.91994, ("leaky_relu", "pruned", 64): 0.92208,
    ("relu", "fixed", 128): 0.9226, ("relu", "pruned", 128): 0.9201,
    ("leaky_relu", "fixed", 128): 0.92138, ("leaky_relu", "pruned", 128): 0.92288,
    ("relu", "dropout", 512): 0.92262,
}


@keras.saving.register_keras_serializable(package="keras_darn_benchmarks")
def leaky_relu_001(x):
    """LeakyReLU with PyTorch's default slope 0.01 (serializable, for `shrink`)."""
    return keras.activations.leaky_relu(x, negative_slope=0.01)


def activation_fn(name):
    if name == "relu":
        return keras.activations.relu
    if name == "leaky_relu":
        return leaky_relu_001
    raise ValueError(
        "Received an invalid value for `activations`, expected 'relu' or "
        f"'leaky_relu'. Received: {name!r}"
    )


def build_model(arm, width, activation):
    """The paper's CNN (Table 1, left) with the arm's FC layer.

    Table 1 lists 5x5 convolutions with 32/64/128 filters and an FC-512 of
    589,824 weights, i.e. 1152 = 3 x 3 x 128 inputs; 'same' convolutions with
    2x2 max pooling give exactly that from 28 x 28 images (the table's
    strides and 5x5 pools cannot).
    """
    g = activation_fn(activation)
    layers = keras.layers
    model_layers = [keras.Input((28, 28, 1))]
    for filters in (32, 64, 128):
        model_layers += [
            layers.Conv2D(filters, 5, padding="same", activation=g),
            layers.MaxPooling2D(2),
        ]
    model_layers.append(layers.Flatten())
    if arm in ("pruned", "fixed"):
        # The pruned arm's FC becomes a StandoutDense in `darn.prepare`.
        model_layers.append(layers.Dense(width, activation=g, name="fc"))
    else:
        model_layers += [
            layers.Dense(width, activation=g, name="fc"),
            layers.Dropout(FLAGS.dropout),
        ]
    model_layers.append(layers.Dense(10, activation="softmax", name="classifier"))
    return keras.Sequential(model_layers)


def geometric(period=None):
    """The paper's pruning ratio `ratio <- ratio + gamma * (1 - ratio)` every P epochs."""
    return darn.schedules.Geometric(FLAGS.gamma, every=FLAGS.period if period is None else period)


def live_widths(width, schedule, target):
    """`(epoch, live units)` after each pruning event of `schedule`, down to `target`."""
    events, step, live = [], 0, width
    while live > target:
        ratio = schedule(step)
        if ratio is not None:
            live = width - standout_units_to_remove(width, ratio, target)
            events.append((step + 1, live))
        step += 1
    return events


def arm_schedule(arm, target, period=None, epochs=None):
    """SGD epochs and pruning-event epochs of an arm (the paper's scheme).

    Pruned arms: SGD with momentum until the target width is reached, one
    more period of SGD, then Adam. Fixed and dropout arms: SGD for
    `fixed_sgd_periods` periods, then Adam. Every arm runs `epochs` epochs.
    """
    period = FLAGS.period if period is None else period
    epochs = FLAGS.epochs if epochs is None else epochs
    if arm == "pruned":
        events = [epoch for epoch, _ in live_widths(FLAGS.start_width, geometric(period), target)]
        switch = (events[-1] if events else 0) + period
    else:
        events = []
        switch = FLAGS.fixed_sgd_periods * period
    return min(switch, epochs), [e for e in events if e <= epochs]


def train_run(arm, target, activation, seed, data):
    """One training run; returns its curves and summary numbers."""
    (x_train, y_train), (x_test, y_test) = data
    keras.utils.set_random_seed(seed)
    width = FLAGS.start_width if arm == "pruned" else target
    model = build_model(arm, width, activation)
    pruning = None
    if arm == "pruned":
        model, pruning = darn.prepare(
            model, "standout", darn.Target(units=target), schedule=geometric(),
            alpha=FLAGS.alpha, beta=FLAGS.beta,
        )
    epochs = FLAGS.epochs
    switch, _ = arm_schedule(arm, target)
    curves = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": [], "live_units": []}
    start = time.time()
    phases = [(keras.optimizers.SGD(FLAGS.sgd_lr, momentum=0.9), 0, switch),
              (keras.optimizers.Adam(FLAGS.adam_lr), switch, epochs)]
    for optimizer, first, last in phases:
        if last <= first:
            continue
        model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
        callbacks = []
        if arm == "pruned" and first == 0:
            callbacks.append(pruning)
        history = model.fit(
            x_train, y_train, batch_size=FLAGS.batch_size, epochs=last, initial_epoch=first,
            validation_data=(x_test, y_test), validation_batch_size=500,
            callbacks=callbacks, verbose=0,
        )
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            curves[key] += [float(v) for v in history.history[key]]
        live = history.history.get("standout/fc/live_units")
        if live is None:
            live_now = model.get_layer("fc").active_units if arm == "pruned" else width
            live = [live_now] * (last - first)
        curves["live_units"] += [int(v) for v in live]
    seconds = time.time() - start
    run = {
        "arm": arm, "width": target, "activation": activation, "seed": seed,
        "sgd_epochs": switch, "adam_epochs": epochs - switch,
        "best_accuracy": max(curves["val_accuracy"]),
        "best_epoch": int(np.argmax(curves["val_accuracy"])) + 1,
        "final_accuracy": curves["val_accuracy"][-1],
        "final_loss": curves["val_loss"][-1],
        "fc_live_units": curves["live_units"][-1],
        "params": int(model.count_params()),
        "seconds": seconds,
        "curves": curves,
    }
    if pruning is not None:
        run["pruning_events"] = [
            {"epoch": e["step"] + 1, "live_units": e["live_units"]} for e in pruning.events
        ]
        if seed == int(FLAGS.seeds[0]):
            run["shrink"] = shrink_check(model, pruning, x_test)
    return run


def shrink_check(model, pruning, x_test):
    """Shrinks a pruned model (`callback.finish()`); returns its width, params and output change."""
    try:
        small = pruning.finish().model
    except Exception as error:  # reported in the results, not fatal
        return {"error": f"{type(error).__name__}: {error}"}
    masked_outputs = model.predict(x_test, verbose=0)
    small_outputs = small.predict(x_test, verbose=0)
    difference = np.abs(small_outputs - masked_outputs).max()
    return {
        "fc_live_units_masked": int(model.get_layer("fc").active_units),
        "fc_width_after_shrink": int(small.get_layer("fc").units),
        "fc_layer_after_shrink": type(small.get_layer("fc")).__name__,
        "params_after_shrink": int(small.count_params()),
        "max_output_difference": float(difference),
        "outputs_equal": bool(np.allclose(small_outputs, masked_outputs, rtol=1e-5, atol=1e-6)),
        "same_predictions": bool(
            np.array_equal(small_outputs.argmax(-1), masked_outputs.argmax(-1))
        ),
    }


def summarize(runs):
    groups = {}
    for run in runs:
        groups.setdefault((run["activation"], run["arm"], run["width"]), []).append(run)
    summary = []
    for (activation, arm, width), members in sorted(groups.items()):
        best = np.array([r["best_accuracy"] for r in members])
        final = np.array([r["final_accuracy"] for r in members])
        summary.append({
            "activation": activation, "arm": arm, "width": width, "seeds": len(members),
            "best_mean": float(best.mean()), "best_std": float(best.std(ddof=1)) if len(best) > 1 else 0.0,
            "best_min": float(best.min()), "best_max": float(best.max()),
            "final_mean": float(final.mean()),
            "final_std": float(final.std(ddof=1)) if len(final) > 1 else 0.0,
            "params": members[0]["params"],
            "paper_best": PAPER_TABLE_2.get((activation, arm, width)),
        })
    return summary


def _cell(entry, key):
    if entry is None:
        return "-"
    return f"{100 * entry[key + '_mean']:.2f} ± {100 * entry[key + '_std']:.2f}"


def _pct(value):
    return "-" if value is None else f"{100 * value:.2f}"


def write_markdown(path, config, summary, runs, total_seconds):
    index = {(s["activation"], s["arm"], s["width"]): s for s in summary}
    widths = [int(w) for w in FLAGS.widths]
    lines = [
        "# Standout pruning on Fashion-MNIST (Dutta & Mitra, Table 2)",
        "",
        f"Generated by `benchmarks/standout.py` in {total_seconds / 60:.1f} min on "
        f"{config['machine']}, keras_darn code: {config['keras_darn_code']}.",
        "",
        f"- Data: stratified subsets (seed 0) of Fashion-MNIST: {config['num_train']} training "
        f"images of the 60,000 and {config['num_test']} test images of the 10,000; all arms use "
        "the same subsets. Test accuracy is measured after every epoch.",
        f"- {config['epochs']} epochs per run (the paper: 525), pruning period {config['period']} "
        f"epoch(s) (paper: 25), gamma {config['gamma']}, Standout alpha {config['alpha']}, "
        f"beta {config['beta']}, batch {config['batch_size']}; SGD lr {config['sgd_lr']} momentum 0.9, "
        f"then Adam lr {config['adam_lr']}. Pruned arms switch to Adam one period after reaching "
        f"their width; fixed and dropout arms after {config['fixed_sgd_periods']} periods.",
        "- Scale: the paper's scheme compressed with its structure kept: every run has the same "
        "number of epochs; the first pruning event comes after one period (as in the paper, no "
        "extra warm-up); pruned arms use SGD until one period after their final width, then Adam; "
        "fixed and dropout arms use SGD for the paper's 4 periods, then Adam. The epoch budget is "
        "what 54 runs allowed in a ~35 min budget on 2 CPU cores shared with other jobs; a smaller "
        "subset and batch 32 buy more epochs (and steps) at the final width than the first run "
        "(2,000 images, 8 epochs, batch 64, whose pruned-16 nets had 3 epochs at 16 units).",
        f"- Runs done: {config.get('runs_done', '?')}.",
        f"- Seeds {config['seeds']}; cells are mean ± sample std over seeds, in %. "
        "'best' = highest test accuracy over the epochs (the paper's Table 2 statistic), "
        "'final' = after the last epoch. Paper = best of the paper's Table 2 row.",
        "",
        "Schedule per arm (epochs; the paper's, for 525 epochs and P = 25, in brackets):",
        "",
    ]
    schedules = []
    for arm, width in [("pruned", w) for w in widths] + [("fixed", w) for w in widths] + [
        ("dropout", FLAGS.start_width)
    ]:
        sgd, events = arm_schedule(arm, width)
        paper_sgd, paper_events = arm_schedule(arm, width, period=25, epochs=525)
        at_width = config["epochs"] - (events[-1] if events else 0)
        paper_at_width = 525 - (paper_events[-1] if paper_events else 0)
        name = f"{arm}-{width}" if arm != "dropout" else f"FC-{width} + dropout"
        schedules.append([
            name,
            f"{', '.join(map(str, events)) or '-'} [{', '.join(map(str, paper_events)) or '-'}]",
            f"{events[-1] if events else 0} [{paper_events[-1] if paper_events else 0}]",
            f"{sgd} [{paper_sgd}]",
            f"{config['epochs'] - sgd} [{525 - paper_sgd}]",
            f"{at_width} [{paper_at_width}]",
        ])
    lines += harness.markdown_table(
        ["arm", "pruning events after epoch", "reaches final width after epoch", "SGD epochs",
         "Adam epochs", "epochs at final width"],
        schedules,
    )
    lines.append("")
    comparison = []
    verdicts = []
    for activation in FLAGS.activations:
        for width in widths:
            fixed = index.get((activation, "fixed", width))
            pruned = index.get((activation, "pruned", width))
            delta = "-"
            if fixed and pruned:
                d = 100 * (pruned["best_mean"] - fixed["best_mean"])
                delta = f"{d:+.2f}"
                if width in (16, 32):
                    met = "met" if d >= 0 else "NOT met"
                    verdicts.append(
                        f"- {activation}, {width} units: pruned {100 * pruned['best_mean']:.2f} vs "
                        f"fixed {100 * fixed['best_mean']:.2f} (best, mean) -> goal {met}; final "
                        f"accuracy: pruned {100 * pruned['final_mean']:.2f} vs fixed "
                        f"{100 * fixed['final_mean']:.2f}."
                    )
            paper_fixed = PAPER_TABLE_2.get((activation, "fixed", width))
            paper_pruned = PAPER_TABLE_2.get((activation, "pruned", width))
            comparison.append([
                activation, width, _cell(fixed, "best"), _cell(pruned, "best"), delta,
                _cell(fixed, "final"), _cell(pruned, "final"), _pct(paper_fixed), _pct(paper_pruned),
            ])
    lines += harness.markdown_table(
        ["activation", "FC width", "fixed best", "pruned best", "pruned − fixed (best)",
         "fixed final", "pruned final", "paper fixed", "paper pruned"],
        comparison,
    )
    lines.append("")
    dropout = []
    for activation in FLAGS.activations:
        entry = index.get((activation, "dropout", FLAGS.start_width))
        if entry:
            dropout.append([
                activation, f"FC-{FLAGS.start_width} + dropout {FLAGS.dropout}",
                _cell(entry, "best"), _cell(entry, "final"), f"{entry['params']:,}",
                _pct(entry["paper_best"]),
            ])
    lines += harness.markdown_table(
        ["activation", "arm", "best", "final", "params", "paper"], dropout
    )
    lines += ["", "Goal (pruned mean accuracy >= fixed-width mean accuracy at 16 and 32 units):", ""]
    lines += verdicts
    shrinks = [r for r in runs if "shrink" in r]
    if shrinks:
        lines += ["", "`shrink` of the pruned models (first seed):", ""]
        for r in shrinks:
            s = r["shrink"]
            if "error" in s:
                lines.append(f"- {r['activation']} pruned-{r['width']}: {s['error']}")
            else:
                lines.append(
                    f"- {r['activation']} pruned-{r['width']}: live FC units (masked) "
                    f"{s['fc_live_units_masked']} -> shrunk FC width {s['fc_width_after_shrink']} "
                    f"({s['fc_layer_after_shrink']}), params {r['params']:,} -> "
                    f"{s['params_after_shrink']:,}, max |output difference| on the "
                    f"{config['num_test']} test images {s['max_output_difference']:.1e} "
                    f"(allclose rtol 1e-5 atol 1e-6: {s['outputs_equal']}; same predicted "
                    f"classes: {s['same_predictions']})"
                )
    lines += ["", f"Curves (test accuracy and loss, mean over seeds): `{FLAGS.name}_accuracy.png`, "
              f"`{FLAGS.name}_loss.png`.", ""]
    harness.write_markdown(path, lines)


def plot_curves(runs, prefix):
    from matplotlib.ticker import MaxNLocator

    widths = [int(w) for w in FLAGS.widths]
    for key, label in (("val_accuracy", "test accuracy (fraction)"),
                       ("val_loss", "test loss (cross-entropy)")):
        fig, axes = harness.figure(ncols=len(widths), nrows=len(FLAGS.activations), width=4,
                                   height=3.2)
        for row, activation in enumerate(FLAGS.activations):
            for col, width in enumerate(widths):
                ax = axes[row * len(widths) + col]
                for arm, w, style in (("pruned", width, "-"), ("fixed", width, "--"),
                                      ("dropout", FLAGS.start_width, ":")):
                    members = [r for r in runs if (r["activation"], r["arm"], r["width"]) == (activation, arm, w)]
                    if not members:
                        continue
                    curve = np.mean([r["curves"][key] for r in members], axis=0)
                    epochs = np.arange(1, len(curve) + 1)
                    name = f"{arm}-{w}" if arm != "dropout" else f"FC-{w} dropout"
                    ax.plot(epochs, curve, style, label=name)
                    if arm == "pruned":
                        for event in members[0].get("pruning_events", []):
                            ax.axvline(event["epoch"], color="0.85", lw=0.8, zorder=0)
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                harness.label_axes(ax, "epochs trained", label, title=f"{activation}, {width} units",
                                   fontsize=7)
        suffix = "accuracy" if key == "val_accuracy" else "loss"
        harness.save_figure(fig, f"{prefix}_{suffix}.png")


def main(argv):
    del argv
    start = time.time()
    harness.apply_quick({"num_train": 200, "num_test": 200, "epochs": 3, "start_width": 64,
                         "widths": ["16"], "activations": ["relu"], "seeds": ["0"],
                         "fixed_sgd_periods": 1})
    prefix = harness.result_prefix()
    if FLAGS.render_only:
        saved = harness.read_json(prefix + ".json")
        write_markdown(prefix + ".md", saved["config"], saved["summary"], saved["runs"],
                       saved["seconds"])
        plot_curves(saved["runs"], prefix)
        return
    data = harness.load_fashion(FLAGS.num_train, FLAGS.num_test, seed=0, data_dir=FLAGS.data_dir)
    config = {
        key: FLAGS[key].value
        for key in ("num_train", "num_test", "epochs", "period", "gamma", "start_width", "widths",
                    "activations", "seeds", "alpha", "beta", "dropout", "fixed_sgd_periods",
                    "batch_size", "sgd_lr", "adam_lr")
    }
    config["machine"] = harness.describe_machine()
    config["keras_darn_code"] = os.environ.get("KERAS_DARN_COMMIT", "working tree")
    plan = []
    for seed in FLAGS.seeds:  # seed-major: an interrupted run still has whole seeds
        for activation in FLAGS.activations:
            for width in FLAGS.widths:
                plan += [("pruned", int(width), activation, int(seed)),
                         ("fixed", int(width), activation, int(seed))]
            plan.append(("dropout", FLAGS.start_width, activation, int(seed)))
    runs = []
    for number, (arm, width, activation, seed) in enumerate(plan, 1):
        if FLAGS.max_minutes is not None and time.time() - start > 60 * FLAGS.max_minutes:
            print(f"Stopping after {number - 1} of {len(plan)} runs (--max_minutes).", flush=True)
            break
        run = train_run(arm, width, activation, seed, data)
        runs.append(run)
        elapsed = time.time() - start
        print(
            f"[{number}/{len(plan)}] {activation} {arm}-{width} seed {seed}: best "
            f"{run['best_accuracy']:.4f} final {run['final_accuracy']:.4f} live {run['fc_live_units']} "
            f"({run['seconds']:.0f} s; elapsed {elapsed / 60:.1f} min, "
            f"eta {elapsed / number * (len(plan) - number) / 60:.1f} min)",
            flush=True,
        )
        summary = summarize(runs)
        harness.write_json(prefix + ".json", {"config": config, "summary": summary, "runs": runs,
                                              "complete": number == len(plan), "seconds": elapsed})
    total = time.time() - start
    config["runs_done"] = f"{len(runs)} of {len(plan)}"
    harness.write_json(prefix + ".json", {"config": config, "summary": summary, "runs": runs,
                                          "complete": len(runs) == len(plan), "seconds": total})
    write_markdown(prefix + ".md", config, summary, runs, total)
    plot_curves(runs, prefix)
    with open(prefix + ".md") as f:
        print(f.read())


if __name__ == "__main__":
    app.run(main)
