"""Benchmark: growing units on Fashion-MNIST, an MLP and a small CNN.

MLP 784-h-h-10 (ReLU, Adam 1e-3), start width 16, target 256. Arms, each over
several seeds with the same number of steps and the same data order (the
same seeded permutation every epoch, `fit_with_growth(shuffle_seed=seed)`):

- `fixed-16`, `fixed-256`: no growth.
- `grow-zeros_out` (the default): doubling after every epoch from
  `--start_epoch` until 256; new units get zero outgoing weights and random
  incoming weights as large as the layer's average unit (`incoming_norm=1`).
- `grow-zeros_out-vmean`: the default, but the new weights' Adam second
  moments start at the mean of their variable's surviving ones
  (`new_slots="mean"`) instead of 0: tests whether the step inflation of new
  weights (Adam's global bias correction, `adam_step_inflation`) is what
  makes the carried optimizer lose to the reset one.
- `grow-zeros_out-norm0.5`, `grow-zeros_out-norm2` (not in the default arms;
  `--mlp_arms`): the same with new units at 0.5 x (the Rebuilder's own
  choice) and 2 x the average incoming norm.
- `grow-net2net`: Net2WiderNet split of the highest-variance units (DARN's
  rule) with relative noise `--noise`, outgoing weights divided.
- `grow-naive`: the DARN paper's own growth, kept as a baseline: the same
  copies plus noise (on sources and copies), outgoing weights NOT divided.
- `grow-zeros_out-reset`: like the default, but a fresh optimizer after each
  growth (moments and step counter restart; a learning-rate schedule goes on,
  `compile_fresh`).
- `grow-zeros_out-aged`: the default grown with `AgeAwareAdam`, whose bias
  correction counts each weight's own steps: new weights take a fresh
  Adam's steps, surviving ones keep their moments (identical to Adam before
  the first growth).
- `grow-rank`: zeros_out doubling only while the effective-rank trigger fires
  (the layer's activations use >= `--rank_saturation` of its width); its final
  widths vary.
- `fixed-final`: fixed at `grow-rank`'s final widths (per seed) from scratch.
- `fixed-256-reset` (a diagnostic): fixed-256 whose Adam state (moments and
  step counter) is zeroed after the epochs where the grown arms grow (a
  learning-rate schedule goes on, as in the reset arm). It
  tells whether the reset arm's edge comes from growth or from restarting
  Adam, which a fixed network gets too.
  (`fixed-256` is also the "fixed at the final width" arm of the scheduled
  growth arms, which all end at 256.)

The CNN arms (`CNN_ARMS`: fixed small and large, zeros_out, net2net, naive,
reset and aged) use Conv2D(c)-Pool-Conv2D(2c)-Pool-Dense(10), c from
`--cnn_start` to `--cnn_target`.

Training FLOPs are estimated as 3 x forward FLOPs (`count_flops`, per
example, of the model trained in that epoch) x examples seen: the usual
forward + backward estimate. Writes `<output_dir>/growth.json` (config, every
run, summary), `growth.md` and `growth.png`.

    python benchmarks/growth.py     # the defaults took 24 min on 2 CPU cores
    python benchmarks/growth.py --epochs=12 --start_epoch=2 --name=growth_12epochs
                                    # the first, shorter MLP schedule (also 65 % of the FLOPs)
    python benchmarks/growth.py --cnn=false --seeds=5,6,7,8,9 --name=growth_seeds5to9 \
        --mlp_arms=fixed-16,fixed-256,grow-zeros_out,grow-naive,grow-zeros_out-reset,grow-zeros_out-aged
    python benchmarks/growth.py --merge=growth,growth_seeds5to9 --name=growth_10seeds
                                    # pools the two runs' MLP arms (10 seeds)
    python benchmarks/growth.py --mlp=false --cnn_num_train=12000 --cnn_num_test=10000 \
        --cnn_seeds=0,1,2,3,4 --name=growth_cnn12k   # the CNN on more data, 5 seeds
"""

import os
import time

import harness  # noqa: F401  (benchmarks/harness/; first: quiets TensorFlow)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

import keras_darn as darn  # noqa: E402
from keras_darn.methods.growth import AgeAwareAdam  # noqa: E402
from keras_darn.methods.growth.grow import adam_step_inflation  # noqa: E402
from keras_darn.methods.growth.training import fit_with_growth  # noqa: E402
from keras_darn.methods.growth.triggers import EffectiveRankTrigger  # noqa: E402

FLAGS = flags.FLAGS
harness.define_data_flag()
flags.DEFINE_integer("num_train", 12000, "MLP training examples (stratified subset, seed 0).")
flags.DEFINE_integer("num_test", 10000, "MLP test examples.")
flags.DEFINE_integer("epochs", 24, "MLP epochs.")
flags.DEFINE_integer("start_width", 16, "MLP start width.")
flags.DEFINE_integer("target_width", 256, "MLP target width.")
flags.DEFINE_integer("start_epoch", 6, "MLP: completed epochs before the first growth.")
flags.DEFINE_integer("cnn_start_epoch", 1, "CNN: completed epochs before the first growth.")
flags.DEFINE_float("rank_saturation", 0.8, "Saturation of the effective-rank trigger (grow-rank arm).")
flags.DEFINE_float("rate", 1.0, "Relative growth per epoch (1.0 = doubling).")
flags.DEFINE_float("noise", 0.1, "Relative noise of the net2net and naive copies.")
flags.DEFINE_float("lr", 1e-3, "Adam learning rate.")
flags.DEFINE_enum("lr_schedule", "constant", ["constant", "cosine"],
                  "Learning rate over training: constant, or cosine decay from `lr` to 0 over "
                  "all the run's steps (the schedule follows the optimizer's step counter, "
                  "which the carried optimizer keeps and the reset arm restarts).")
flags.DEFINE_integer("batch_size", 128, "Batch size.")
harness.define_seeds_flag(range(5), help_text="MLP seeds.")
harness.define_seeds_flag(range(3), name="cnn_seeds", help_text="CNN seeds.")
flags.DEFINE_list("mlp_arms", None, "MLP arms to run (default: all).")
flags.DEFINE_list("cnn_arms", None, "CNN arms to run (default: all of `CNN_ARMS`).")
flags.DEFINE_bool("mlp", True, "Run the MLP arms.")
flags.DEFINE_bool("cnn", True, "Also run the CNN arms.")
flags.DEFINE_integer("cnn_num_train", 5000, "CNN training examples.")
flags.DEFINE_integer("cnn_num_test", 2000, "CNN test examples.")
flags.DEFINE_integer("cnn_epochs", 8, "CNN epochs.")
flags.DEFINE_integer("cnn_start", 2, "CNN start width c (filters of the first conv).")
flags.DEFINE_integer("cnn_target", 16, "CNN target width c.")
harness.define_output_flags("growth")
harness.define_quick_flag()
flags.DEFINE_bool("rerender", False,
                  "Only rewrite `<name>.md`, `.png` and the summary in `<name>.json` from its runs.")
flags.DEFINE_list("merge", None,
                  "Result files (names) of the same setup with different seeds: pool their runs into "
                  "`<name>.*` (only the arms every file ran).")

GROW_ARMS = {
    "grow-zeros_out": dict(init="zeros_out"),
    "grow-zeros_out-vmean": dict(init="zeros_out", new_slots="mean"),
    "grow-zeros_out-norm0.5": dict(init="zeros_out", incoming_norm=None),
    "grow-zeros_out-norm2": dict(init="zeros_out", incoming_norm=2.0),
    "grow-net2net": dict(init="net2net", noise=True),
    "grow-naive": dict(init="naive", noise=True),
    "grow-zeros_out-reset": dict(init="zeros_out", reset_optimizer=True),
    "grow-zeros_out-aged": dict(init="zeros_out", optimizer=AgeAwareAdam),
    "grow-rank": dict(init="zeros_out", trigger=True),
}
MLP_ARMS = ["fixed-16", "fixed-256", "grow-zeros_out", "grow-zeros_out-vmean", "grow-net2net",
            "grow-naive", "grow-zeros_out-reset", "grow-zeros_out-aged", "grow-rank", "fixed-final",
            "fixed-256-reset"]
CNN_ARMS = ["fixed-small", "fixed-large", "grow-zeros_out", "grow-net2net", "grow-naive",
            "grow-zeros_out-reset", "grow-zeros_out-aged"]


class ResumableSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`schedule(step + offset)`, the offset a variable that `ResetAdam` raises.

    Zeroing the step counter in place would restart the schedule; adding the
    steps to the offset first keeps it going (what `compile_fresh` does for
    the reset arm, whose optimizer is replaced rather than zeroed).
    """

    def __init__(self, schedule):
        self.schedule = schedule
        self.offset = keras.Variable(0, dtype="int64", trainable=False, name="step_offset")

    def __call__(self, step):
        return self.schedule(step + self.offset)


class ResetAdam(keras.callbacks.Callback):
    """Zeroes the optimizer's state (moments, step counter) after the given epochs.

    A `ResumableSchedule` learning rate goes on from the current step.

    Args:
        epochs: the epochs (1-based counts of completed epochs) to reset after.
    """

    def __init__(self, epochs):
        super().__init__()
        self.epochs = set(epochs)

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 in self.epochs:
            optimizer = self.model.optimizer
            if isinstance(optimizer._learning_rate, ResumableSchedule):
                optimizer._learning_rate.offset.assign_add(optimizer.iterations)
            for variable in optimizer.variables:
                if "learning_rate" not in variable.path:
                    variable.assign(keras.ops.zeros_like(variable))


def build_mlp(widths):
    inputs = keras.Input((784,))
    x = keras.layers.Dense(widths[0], activation="relu", name="hidden1")(inputs)
    x = keras.layers.Dense(widths[1], activation="relu", name="hidden2")(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(x), name="mlp")


def build_cnn(widths):
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(widths[0], 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(widths[1], 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(x), name="cnn")


def compile_model(model, total_steps, resumable=False, optimizer=keras.optimizers.Adam):
    learning_rate = FLAGS.lr
    if FLAGS.lr_schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(FLAGS.lr, total_steps)
        if resumable:
            learning_rate = ResumableSchedule(learning_rate)
    model.compile(
        optimizer(learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def run_arm(task, arm, seed, data, final_widths=None):
    (x_train, y_train), (x_test, y_test) = data
    small, large, layers, build, epochs = task["small"], task["large"], task["layers"], task["build"], task["epochs"]
    if arm.startswith("fixed"):
        widths = {"fixed-16": small, "fixed-small": small, "fixed-256": large,
                  "fixed-large": large, "fixed-final": final_widths,
                  "fixed-256-reset": large}[arm]
    else:
        widths = small
    keras.utils.set_random_seed(seed)
    total_steps = epochs * int(np.ceil(len(x_train) / FLAGS.batch_size))
    options = GROW_ARMS.get(arm)
    model = compile_model(
        build(widths), total_steps, resumable=arm == "fixed-256-reset",
        optimizer=(options or {}).get("optimizer", keras.optimizers.Adam),
    )
    common = dict(batch_size=FLAGS.batch_size, shuffle_seed=seed, seed=seed,
                  probe_data=(x_train[:512], y_train[:512]))
    start = time.time()
    if options is not None:
        # Schedule steps count epochs from 0: the first growth after
        # `start_epoch` completed epochs is step `start_epoch - 1`.
        result = darn.resize(
            model, "growth", darn.Target(units={layer: w for layer, w in zip(layers, large)}),
            x=x_train, y=y_train, validation_data=(x_test, y_test), epochs=epochs,
            schedule=darn.schedules.Constant(FLAGS.rate, start=task["start_epoch"] - 1),
            layers=layers,
            init=options["init"],
            noise=FLAGS.noise if options.get("noise") else 0.0,
            reset_optimizer=options.get("reset_optimizer", False),
            new_slots=options.get("new_slots", "zeros"),
            incoming_norm=options.get("incoming_norm", 1.0),
            trigger=EffectiveRankTrigger(FLAGS.rank_saturation) if options.get("trigger") else None,
            **common,
        )
        insertions = _insertions(result.events)
    else:  # a fixed arm: the same one-epoch stages and data order, no growth
        kwargs = {}
        if arm == "fixed-256-reset":  # the epochs after which the scheduled arms grow
            growths = int(np.ceil(np.log2(large[0] / small[0]) / np.log2(1 + FLAGS.rate)))
            kwargs["callbacks"] = [ResetAdam(range(task["start_epoch"], task["start_epoch"] + growths))]
        result = fit_with_growth(
            model, x_train, y_train, epochs=epochs, validation_data=(x_test, y_test),
            **common, **kwargs,
        )
        insertions = []
    seconds = time.time() - start
    history = result.history
    flops_per_epoch = [3 * f * len(x_train) for f in history["forward_flops"]]
    final = result.model
    return {
        "task": task["name"],
        "arm": arm,
        "seed": seed,
        "initial_widths": list(widths),
        "final_widths": [int(getattr(final.get_layer(n), "units", None) or final.get_layer(n).filters) for n in layers],
        "test_accuracy": float(history["val_accuracy"][-1]),
        "test_accuracy_curve": [float(a) for a in history["val_accuracy"]],
        "train_loss_curve": [float(a) for a in history["loss"]],
        "training_flops": float(sum(flops_per_epoch)),
        "cumulative_training_flops": [float(v) for v in np.cumsum(flops_per_epoch)],
        "final_params": int(history["params"][-1]),
        "insertions": insertions,
        "seconds": seconds,
    }


def _insertions(events):
    """One record per growth (the Result has one event per grown layer)."""
    records = {}
    for event in events:
        record = records.setdefault(event["step"], {
            "epoch": event["step"] + 1,  # completed epochs, as before
            "widths_after": dict(event["widths_after"]),
            "loss_before": event["loss_before"],
            "loss_after": event["loss_after"],
            "relative_loss_change": event["relative_loss_change"],
        })
    return [records[step] for step in sorted(records)]


def summarize(runs):
    summary = {}
    for run in runs:
        summary.setdefault(run["task"], {}).setdefault(run["arm"], []).append(run)
    table = {}
    for task, arms in summary.items():
        table[task] = {}
        for arm, items in arms.items():
            acc = np.array([r["test_accuracy"] for r in items])
            last3 = np.array([np.mean(r["test_accuracy_curve"][-3:]) for r in items])
            changes = [i["relative_loss_change"] for r in items for i in r["insertions"]]
            table[task][arm] = {
                "seeds": len(items),
                "accuracy_mean": float(acc.mean()),
                "accuracy_sd": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                "accuracy_min": float(acc.min()),
                "accuracy_max": float(acc.max()),
                "last3_mean": float(last3.mean()),
                "last3_sd": float(last3.std(ddof=1)) if len(last3) > 1 else 0.0,
                "training_flops_mean": float(np.mean([r["training_flops"] for r in items])),
                "final_params_mean": float(np.mean([r["final_params"] for r in items])),
                "final_widths": [r["final_widths"] for r in items],
                "insertions": len(changes) // max(len(items), 1),
                "max_relative_loss_change": float(max(changes)) if changes else None,
                "mean_relative_loss_change": float(np.mean(changes)) if changes else None,
                "seconds_mean": float(np.mean([r["seconds"] for r in items])),
                "accuracy_by_seed": {str(r["seed"]): r["test_accuracy"] for r in items},
            }
    return table


DEFAULT_ARMS = ("grow-zeros_out", "grow-zeros_out-aged")  # zeros_out with Adam / AgeAwareAdam


def targets(table, small_arm, large_arm, grown_arm):
    """The goals for a default-candidate grown arm (zeros_out, optimizer carried)."""
    grown, small, large = table[grown_arm], table[small_arm], table[large_arm]
    sd_small = small["accuracy_sd"]
    checks = {
        "sd_above_small": (grown["accuracy_mean"] - small["accuracy_mean"]) / sd_small if sd_small else None,
        "points_below_large": 100 * (large["accuracy_mean"] - grown["accuracy_mean"]),
        "flops_ratio_to_large": grown["training_flops_mean"] / large["training_flops_mean"],
    }
    checks["above_small_by_3sd"] = bool(checks["sd_above_small"] is not None and checks["sd_above_small"] >= 3)
    checks["within_half_point_of_large"] = checks["points_below_large"] <= 0.5
    checks["flops_at_most_70_percent"] = checks["flops_ratio_to_large"] <= 0.70
    for other in ("grow-naive", "grow-zeros_out-reset"):
        if other in table:
            checks[f"beats_{other}"] = grown["accuracy_mean"] > table[other]["accuracy_mean"]
            mine, theirs = grown["accuracy_by_seed"], table[other]["accuracy_by_seed"]
            differences = [mine[seed] - theirs[seed] for seed in mine if seed in theirs]
            checks[f"paired_{other}"] = {
                "seeds": len(differences),
                "wins": int(sum(d > 0 for d in differences)),
                "mean_difference": float(np.mean(differences)) if differences else None,
            }
    return checks


def all_targets(table):
    """`targets` of every default candidate arm of every task in `table`."""
    checks = {}
    for task, arms in table.items():
        small_arm = "fixed-16" if "fixed-16" in arms else "fixed-small"
        large_arm = "fixed-256" if "fixed-256" in arms else "fixed-large"
        checks[task] = {
            grown: targets(arms, small_arm, large_arm, grown)
            for grown in DEFAULT_ARMS
            if {grown, small_arm, large_arm} <= set(arms)
        }
    return checks


def write_markdown(path, config, table, checks):
    lines = ["# Growing units on Fashion-MNIST", ""]
    mlp, cnn = config.get("mlp", True), config.get("cnn", True)
    data = ([f"MLP: {config['num_train']} training / {config['num_test']} test examples, "
             f"{config['epochs']} epochs, seeds {config['seeds']}, first growth after epoch "
             f"{config['start_epoch']}"] if mlp else [])
    data += ([f"CNN: {config['cnn_num_train']} / {config['cnn_num_test']}, {config['cnn_epochs']} epochs, "
              f"seeds {config['cnn_seeds']}, first growth after epoch {config['cnn_start_epoch']}"]
             if cnn else [])
    lines.append(
        f"Generated by `benchmarks/growth.py`. {'; '.join(data)}. "
        f"Adam lr {config['lr']} ({config.get('lr_schedule', 'constant')}), batch {config['batch_size']}; "
        f"growth x{1 + config['rate']:.1f} after every epoch from the first growth up to the target; "
        f"net2net/naive noise {config['noise']}; grow-rank grows only while the effective rank "
        f"is >= {config['rank_saturation']} x width. "
        "Training FLOPs = 3 x forward FLOPs x examples seen (forward + backward estimate). "
        "Accuracy: final test accuracy, mean +- sample sd over seeds (min-max); the goals use it. "
        "Last 3: each run's test accuracy averaged over its last 3 epochs (less epoch-to-epoch noise), "
        "mean +- sd over seeds. Loss change: "
        "|loss after - loss before| / loss before at each growth, on 512 training examples."
        + (" Runs pooled (`--merge`) from " + ", ".join(f"`{n}.json`" for n in config["merged_from"])
           + ": the arms all of them ran." if config.get("merged_from") else "")
    )
    for task, arms in table.items():
        lines += ["", f"## {task}", ""]
        rows = []
        for arm, s in arms.items():
            widths = sorted({tuple(w) for w in s["final_widths"]})
            change = "-" if s["max_relative_loss_change"] is None else f"{s['max_relative_loss_change']:.2e}"
            rows.append([
                arm,
                f"{100 * s['accuracy_mean']:.2f} +- {100 * s['accuracy_sd']:.2f}",
                f"{100 * s['accuracy_min']:.2f}-{100 * s['accuracy_max']:.2f}",
                f"{100 * s['last3_mean']:.2f} +- {100 * s['last3_sd']:.2f}",
                f"{s['training_flops_mean']:.3g}",
                f"{s['final_params_mean']:.0f}",
                ", ".join("x".join(map(str, w)) for w in widths),
                s["insertions"],
                change,
            ])
        lines += harness.markdown_table(
            ["arm", "test accuracy (%)", "min-max", "last 3 (%)", "training FLOPs", "final params",
             "final widths", "insertions", "max rel. loss change"],
            rows,
        )
        for grown_arm, c in checks.get(task, {}).items():
            sd = "n/a" if c["sd_above_small"] is None else f"{c['sd_above_small']:.1f}"
            lines += ["", f"Goals for {grown_arm} (a default candidate: zeros_out, optimizer carried):", "",
                      f"- {sd} sd (of the small fixed arm) above it: {'met' if c['above_small_by_3sd'] else 'NOT met'} (goal >= 3)",
                      f"- {c['points_below_large']:.2f} points below the large fixed arm: {'met' if c['within_half_point_of_large'] else 'NOT met'} (goal <= 0.5)",
                      f"- {100 * c['flops_ratio_to_large']:.0f} % of its training FLOPs: {'met' if c['flops_at_most_70_percent'] else 'NOT met'} (goal <= 70 %)"]
            for other in ("grow-naive", "grow-zeros_out-reset"):
                if f"beats_{other}" in c:
                    paired = c.get(f"paired_{other}")
                    detail = (f" (higher on {paired['wins']} of {paired['seeds']} seeds; mean paired "
                              f"difference {100 * paired['mean_difference']:+.2f} points)"
                              if paired and paired["seeds"] else "")
                    lines.append(f"- beats {other}: {'yes' if c[f'beats_{other}'] else 'NO'}{detail}")
        if {"fixed-256", "fixed-256-reset"} <= set(arms):
            gain = 100 * (arms["fixed-256-reset"]["accuracy_mean"] - arms["fixed-256"]["accuracy_mean"])
            lines += ["", f"Diagnostic: zeroing Adam's state at the growth epochs moves fixed-256 by "
                          f"{gain:+.2f} points (fixed-256-reset vs fixed-256), with no growth at all."]
    if mlp:
        lines += ["", "## Adam's step inflation of new weights", "",
                  "New weights start with zero moments but Adam's bias correction uses the global step t, "
                  "so for a steady gradient their step is `adam_step_inflation(t0, k)` times a fresh "
                  "optimizer's, k steps after a growth at step t0 (MLP):", ""]
        steps = -(-config["num_train"] // config["batch_size"])
        ks = (1, 10, 50, 200)
        lines += harness.markdown_table(
            ["growth at step"] + [f"k = {k}" for k in ks],
            [
                [epoch * steps] + [f"{adam_step_inflation(epoch * steps, k):.2f}" for k in ks]
                for epoch in range(config["start_epoch"], config["start_epoch"] + 4)
            ],
        )
    lines.append("")
    harness.write_markdown(path, lines)


def plot(path, runs, table):
    tasks = list(table)
    fig, axes = harness.figure(ncols=len(tasks), width=6.5, height=4.8)
    for ax, task in zip(axes, tasks):
        for arm in table[task]:
            items = [r for r in runs if r["task"] == task and r["arm"] == arm]
            flops = np.mean([r["cumulative_training_flops"] for r in items], axis=0)
            curves = np.array([r["test_accuracy_curve"] for r in items])
            line, = ax.plot(flops, 100 * curves.mean(axis=0), marker="o", ms=3, label=arm)
            ax.fill_between(flops, 100 * curves.min(axis=0), 100 * curves.max(axis=0),
                            color=line.get_color(), alpha=0.15)
        ax.set_xscale("log")
        harness.label_axes(ax, "training FLOPs (3 x forward FLOPs x examples seen)",
                           "test accuracy (%)",
                           title=f"{task}: accuracy vs training FLOPs (mean, min-max over seeds)",
                           fontsize=8)
    harness.save_figure(fig, path, dpi=120)


def load_data(num_train, num_test, images):
    (x_train, y_train), (x_test, y_test) = harness.load_fashion(
        num_train, num_test, seed=0, data_dir=FLAGS.data_dir, images=images)
    return (x_train, y_train.astype("int32")), (x_test, y_test.astype("int32"))


def main(argv):
    del argv
    harness.apply_quick({"num_train": 500, "num_test": 200, "epochs": 3, "start_epoch": 1,
                         "target_width": 32, "seeds": ["0"], "cnn_seeds": ["0"],
                         "cnn_num_train": 300, "cnn_num_test": 100, "cnn_epochs": 3,
                         "cnn_target": 4})
    prefix = harness.result_prefix()
    if FLAGS.rerender or FLAGS.merge:
        config, runs = merged_runs(FLAGS.merge) if FLAGS.merge else load_runs(FLAGS.name)
        write_results(prefix, config, runs)
        return
    seeds = harness.seeds()
    config = {k: FLAGS[k].value for k in (
        "num_train", "num_test", "epochs", "start_width", "target_width", "start_epoch",
        "cnn_start_epoch", "rank_saturation", "rate",
        "noise", "lr", "lr_schedule", "batch_size", "seeds", "cnn_seeds", "mlp", "cnn", "cnn_num_train", "cnn_num_test",
        "cnn_epochs", "cnn_start", "cnn_target")}
    config["machine"] = harness.describe_machine()
    tasks = []
    if FLAGS.mlp:
        tasks.append(dict(name="MLP 784-h-h-10", build=build_mlp, layers=["hidden1", "hidden2"],
                          small=[FLAGS.start_width] * 2, large=[FLAGS.target_width] * 2,
                          epochs=FLAGS.epochs, start_epoch=FLAGS.start_epoch,
                          arms=FLAGS.mlp_arms or MLP_ARMS, seeds=seeds,
                          data=load_data(FLAGS.num_train, FLAGS.num_test, images=False)))
    if FLAGS.cnn:
        tasks.append(dict(name="CNN c-2c", build=build_cnn, layers=["conv1", "conv2"],
                          small=[FLAGS.cnn_start, 2 * FLAGS.cnn_start],
                          large=[FLAGS.cnn_target, 2 * FLAGS.cnn_target], epochs=FLAGS.cnn_epochs,
                          start_epoch=FLAGS.cnn_start_epoch,
                          arms=FLAGS.cnn_arms or CNN_ARMS, seeds=[int(s) for s in FLAGS.cnn_seeds],
                          data=load_data(FLAGS.cnn_num_train, FLAGS.cnn_num_test, images=True)))
    runs, started = [], time.time()
    for task in tasks:
        for seed in task["seeds"]:
            final_widths = None
            for arm in task["arms"]:
                if arm == "fixed-final" and final_widths is None:
                    continue
                run = run_arm(task, arm, seed, task["data"], final_widths)
                if arm == "grow-rank":
                    final_widths = run["final_widths"]
                runs.append(run)
                print(f"[{time.time() - started:6.0f}s] {task['name']} {arm} seed {seed}: "
                      f"acc {100 * run['test_accuracy']:.2f} widths {run['final_widths']} "
                      f"flops {run['training_flops']:.3g} ({run['seconds']:.0f}s)", flush=True)
    config["wall_clock_seconds"] = time.time() - started
    write_results(prefix, config, runs)
    print(f"Wrote {prefix}.json, .md, .png in {config['wall_clock_seconds']:.0f}s")


def write_results(prefix, config, runs):
    """Summary and targets from `runs`; writes `<prefix>.json`, `.md` and `.png`."""
    table = summarize(runs)
    checks = all_targets(table)
    harness.write_json(prefix + ".json",
                       {"config": config, "summary": table, "targets": checks, "runs": runs})
    write_markdown(prefix + ".md", config, table, checks)
    plot(prefix + ".png", runs, table)


def load_runs(name):
    """`(config, runs)` of the result file `name` in `--output_dir`, else in `results/runs/growth/`."""
    path = os.path.join(FLAGS.output_dir, name + ".json")
    if not os.path.exists(path):
        path = os.path.join(harness.RUNS_DIR, "growth", name + ".json")
    saved = harness.read_json(path)
    return saved["config"], saved["runs"]


# Settings that must agree for runs of two result files to be pooled: shared, MLP, CNN.
_POOLED_SETTINGS = {
    None: ("rate", "noise", "lr", "lr_schedule", "batch_size"),
    "MLP": ("num_train", "num_test", "epochs", "start_width", "target_width", "start_epoch"),
    "CNN": ("cnn_num_train", "cnn_num_test", "cnn_epochs", "cnn_start", "cnn_target", "cnn_start_epoch"),
}


def _tasks_run(runs):
    return {run["task"].split()[0] for run in runs}


def merged_runs(names):
    """Pools the runs of several result files (other seeds of the same setup).

    Keeps the (task, arm) pairs every file ran, so each arm has the seeds of
    all files. Raises `ValueError` when the files' settings differ or a seed
    repeats.
    """
    loaded = [load_runs(name) for name in names]
    config = dict(loaded[0][0])
    for name, (other, other_runs) in zip(names[1:], loaded[1:]):
        both = _tasks_run(loaded[0][1]) & _tasks_run(other_runs)
        keys = [k for task in [None, *sorted(both)] for k in _POOLED_SETTINGS[task]]
        differ = [k for k in keys if other.get(k) != config.get(k)]
        if differ:
            raise ValueError(f"Received result files with different settings {differ}: "
                             f"{names[0]} vs {name}; only runs of the same setup can be pooled.")
    shared = set.intersection(*({(r["task"], r["arm"]) for r in runs} for _, runs in loaded))
    runs = [r for _, file_runs in loaded for r in file_runs if (r["task"], r["arm"]) in shared]
    keys = [(r["task"], r["arm"], r["seed"]) for r in runs]
    if len(keys) != len(set(keys)):
        raise ValueError(f"Received result files that share seeds: {names}; pooled runs must differ.")
    config["merged_from"] = list(names)
    config["seeds"] = sorted({str(r["seed"]) for r in runs if r["task"].startswith("MLP")}, key=int)
    config["cnn_seeds"] = sorted({str(r["seed"]) for r in runs if r["task"].startswith("CNN")}, key=int)
    config["mlp"] = any(task.startswith("MLP") for task, _ in shared)
    config["cnn"] = any(task.startswith("CNN") for task, _ in shared)
    config.pop("wall_clock_seconds", None)
    return config, runs


if __name__ == "__main__":
    app.run(main)
