"""Benchmark: NodeDrop (Jensen, Harer & Chin) on Fashion-MNIST, Table 1 / Figure 2.

The paper's MNIST experiment: five CNNs of different widths (Table 1,
DENSE160 ... DENSE640: conv 3x3 - conv 3x3 - maxpool 2x2 - conv 3x3 -
conv 3x3 - maxpool 2x2 - dense - dense 10, SoftClampedReLU everywhere but the
softmax output), each trained with the NodeDrop regularizer for a sweep of
lambda and without it (baseline), Adam 1e-3, batch 1024, 480 epochs. MNIST is
not available offline; Fashion-MNIST (same shape) is used instead.

Per run, in one process: the regularized runs use `darn.prepare(model, "nodedrop")` (penalty
on every hidden layer, inputs declared in [0, 1]) and the `NodeDrop` callback
(check every epoch); the baseline is the same plain model, same initial
weights, no penalty and no callback. After training the masked model is
shrunk with `keras_darn.shrink`, its outputs are compared with the masked
model's on the test subset, and parameters / hidden nodes are counted on the
shrunk model. Per-epoch training time is measured for every run (first epoch
left out: it includes tracing) and compared with the baseline of the same
network; since separate runs see different load from other jobs, the time
goal is judged on `measure_overhead`, which alternates epochs of the plain
and the NodeDrop model in one process (`--overhead_only` reruns just that).

Writes `<output_dir>/<name>.json` (config, every run), `<name>.md` (the
paper's table columns plus the time ratio, and the goals checked) and
`<name>_sizes.png` (final against initial parameters per lambda, the paper's
Figure 2 left); `--name` defaults to `nodedrop`, `--output_dir` to
`benchmarks/results`. Checkpoints: `benchmarks/results/runs/nodedrop/...`
in the commands below (not committed).

    python benchmarks/nodedrop.py --quick      # a smoke run, written under results/runs/quick
    python benchmarks/nodedrop.py              # the defaults: ~36 min on 2 CPU cores (sweep 31, timing 5)
    python benchmarks/nodedrop.py --networks=DENSE640 \\
        --lambdas=7.5e-4,1e-3,1.3e-3 --finetune_epochs=4 --num_train=16384 --num_test=10000 \\
        --epochs=24 --overhead_networks=DENSE160,DENSE640 \\
        --checkpoint_dir=benchmarks/results/runs/nodedrop/checkpoints
                                                # the committed results: 3,072 steps per run,
                                                # the last 4 epochs without the penalty (~1 h)
    python benchmarks/nodedrop.py --num_train=60000 --num_test=10000 \\
        --batch_size=1024 --epochs=480 --name=nodedrop_paper \\
        --output_dir=benchmarks/results/runs/nodedrop \\
        --checkpoint_dir=benchmarks/results/runs/nodedrop/paper
                                                # the paper's schedule (days on CPU), in pieces:
                                                # saved after every epoch, rerun to resume
"""

import json
import os
import sys
import time

import harness  # noqa: F401  (benchmarks/harness/; first: quiets TensorFlow)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

import keras_darn as darn  # noqa: E402
from keras_darn.methods.nodedrop import NodeDrop  # noqa: E402
from keras_darn.methods.nodedrop import detach_nodedrop  # noqa: E402
from keras_darn.methods.nodedrop.condition import unit_margins  # noqa: E402
from keras_darn.layers import soft_clamped_relu  # noqa: E402
from keras_darn.metrics import count_params  # noqa: E402
from keras_darn.rebuild import compile_like  # noqa: E402
from keras_darn.rebuild import shrink  # noqa: E402

PAPER_EXAMPLES = 480 * 60_000  # the paper: 480 epochs of the 60,000 MNIST training images
PAPER_STEPS = PAPER_EXAMPLES // 1024  # at batch 1024

NETWORKS = {  # Table 1: features of layers 1-5
    "DENSE160": (16, 16, 32, 32, 64),
    "DENSE240": (24, 24, 48, 48, 96),
    "DENSE320": (32, 32, 64, 64, 128),
    "DENSE480": (48, 48, 96, 96, 192),
    "DENSE640": (64, 64, 128, 128, 256),
}

FLAGS = flags.FLAGS
harness.define_data_flag()
flags.DEFINE_integer("num_train", 4096, "Training examples (stratified subset, seed 0).")
flags.DEFINE_integer("num_test", 2000, "Test examples (stratified subset, seed 0).")
flags.DEFINE_integer("epochs", 3, "Epochs of every run (the paper: 480).")
flags.DEFINE_integer("batch_size", 128, "Batch size (the paper: 1024).")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate (the paper: 1e-3).")
flags.DEFINE_list("lambdas", ["1e-6", "1e-5", "3.2e-5", "1e-4", "1e-3"], "NodeDrop lambdas.")
flags.DEFINE_list("networks", list(NETWORKS), "Networks of Table 1 to run.")
flags.DEFINE_float("c", 1.0, "NodeDrop C (the paper: 1).")
harness.define_seed_flag()
harness.define_output_flags("nodedrop")
harness.define_quick_flag()
flags.DEFINE_list("overhead_networks", ["DENSE160", "DENSE640"],
                  "Networks of the interleaved per-epoch time measurement.")
flags.DEFINE_float("overhead_lambda", 1e-4, "Lambda of the interleaved time measurement.")
flags.DEFINE_integer("overhead_rounds", 6, "Timed epoch pairs per network (after a warm-up pair).")
flags.DEFINE_bool(
    "overhead_only", False,
    "Only the interleaved time measurement: stored into the existing <name>.json.",
)
flags.DEFINE_string(
    "checkpoint_dir", None,
    "Save every run (model with optimizer state, history) after each epoch under this "
    "directory and resume from it when the script is started again: long schedules can "
    "then be run in pieces (kill the script, rerun the same command). A resumed run "
    "continues with a new data order, so it is not bit-identical to an uninterrupted one.",
)
flags.DEFINE_integer(
    "finetune_epochs", 0,
    "The last this many of --epochs train NodeDrop runs with the penalty switched off "
    "(lambda 0): dropped units stay masked, the rest recover the accuracy the penalty "
    "costs. Not in the paper. Baselines train all --epochs as before. A checkpoint "
    "keeps the number of penalty epochs (--epochs minus this), so a finished run can "
    "be fine-tuned further by rerunning with more --epochs and --finetune_epochs.",
)
flags.DEFINE_bool(
    "render_only", False,
    "Rewrite nodedrop.md and the plot from an existing nodedrop.json, without training.",
)


def build_network(widths):
    """A Table 1 network: 3x3 convs (valid padding), maxpool after every second."""
    layers = keras.layers
    inputs = keras.Input((28, 28, 1), name="image")
    x = inputs
    for index, filters in enumerate(widths[:4]):
        x = layers.Conv2D(filters, 3, activation=soft_clamped_relu, name=f"conv{index + 1}")(x)
        if index % 2 == 1:
            x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(widths[4], activation=soft_clamped_relu, name="dense5")(x)
    outputs = layers.Dense(10, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs)


def hidden_nodes(model):
    """Units of the Conv2D/Dense layers, the softmax output left out."""
    return sum(
        getattr(layer, "filters", None) or layer.units
        for layer in model.layers
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
        and layer.name != "output"
    )


def live_nodes(model):
    return sum(
        layer.active_units if hasattr(layer, "active_units") else (
            getattr(layer, "filters", None) or layer.units
        )
        for layer in model.layers
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
        and layer.name != "output"
    )


class RunRecorder(keras.callbacks.Callback):
    """Adds every epoch to the run's `state`; with a `prefix`, also saves the run.

    `state` holds the run besides the model: epochs done, history, epoch
    seconds and units dropped, over this fit and the ones it resumes. Saved
    (`prefix.keras`: the model with its optimizer state, `prefix.json`: the
    state), a later invocation resumes from it.
    """

    def __init__(self, state, timer, nodedrop, prefix=None):
        super().__init__()
        self.state, self.timer, self.nodedrop, self.prefix = state, timer, nodedrop, prefix
        self.drops_before = state["drops"]  # the callback's events start empty every fit

    def on_epoch_end(self, epoch, logs=None):
        self.state["epochs_done"] = epoch + 1
        for key, value in (logs or {}).items():
            self.state["history"].setdefault(key, []).append(float(value))
        self.state["epoch_seconds"].append(self.timer.seconds[-1])
        self.state["drops"] = self.drops_before + (
            len(self.nodedrop.events) if self.nodedrop else 0
        )
        if self.prefix:
            self.model.save(self.prefix + ".keras")  # before the state: never ahead of the model
            with open(self.prefix + ".json", "w") as f:
                json.dump(self.state, f)


def _run_settings(lam):
    """What a checkpoint must share with this invocation to be resumed."""
    settings = {"num_train": FLAGS.num_train, "batch_size": FLAGS.batch_size,
                "learning_rate": FLAGS.learning_rate, "c": FLAGS.c, "seed": FLAGS.seed}
    if lam is not None and FLAGS.finetune_epochs:
        # The epochs with the penalty; the fine-tuning after them may be
        # extended by a later invocation with more --epochs.
        settings["penalty_epochs"] = FLAGS.epochs - FLAGS.finetune_epochs
    return settings


def _new_run_model(network, lam):
    keras.utils.set_random_seed(FLAGS.seed)
    model = build_network(NETWORKS[network])
    state = {"settings": _run_settings(lam), "epochs_done": 0, "history": {},
             "epoch_seconds": [], "drops": 0,
             "initial_params": count_params(model), "initial_nodes": hidden_nodes(model)}
    if lam is not None:
        model, _ = darn.prepare(model, "nodedrop", lam=lam, c=FLAGS.c, input_range=(0, 1))
    model.compile(
        keras.optimizers.Adam(FLAGS.learning_rate),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model, state


def train_run(network, lam, data):
    (x_train, y_train), (x_test, y_test) = data
    prefix = None
    if FLAGS.checkpoint_dir:
        os.makedirs(FLAGS.checkpoint_dir, exist_ok=True)
        prefix = os.path.join(FLAGS.checkpoint_dir, f"{network}_{_fmt_lambda(lam)}")
    if prefix and os.path.exists(prefix + ".json"):
        with open(prefix + ".json") as f:
            state = json.load(f)
        if state["settings"] != _run_settings(lam) or state["epochs_done"] > FLAGS.epochs:
            raise ValueError(
                f"The checkpoint {prefix}.json was made with {state['settings']} and has "
                f"{state['epochs_done']} epochs; this run asks for {_run_settings(lam)} and "
                f"{FLAGS.epochs} epochs. Use another --checkpoint_dir or delete the checkpoint."
            )
        model = keras.saving.load_model(prefix + ".keras")
        print(f"{network} lambda={_fmt_lambda(lam)}: resumed after epoch {state['epochs_done']}",
              flush=True)
    else:
        model, state = _new_run_model(network, lam)
    start = time.perf_counter()
    penalty_epochs = FLAGS.epochs if lam is None else FLAGS.epochs - FLAGS.finetune_epochs
    for stage_end in sorted({penalty_epochs, FLAGS.epochs}):
        if state["epochs_done"] >= stage_end:
            continue
        if state["epochs_done"] >= penalty_epochs:
            # Same weights, masks, optimizer moments and step count; no penalty.
            model = compile_like(detach_nodedrop(model), model)
        timer = harness.epoch_timer()
        callbacks = [timer]
        nodedrop = None
        if lam is not None:
            nodedrop = NodeDrop(input_range=(0, 1))
            callbacks = [nodedrop, timer]  # the timer includes NodeDrop's epoch end
        callbacks.append(RunRecorder(state, timer, nodedrop, prefix))  # after both
        model.fit(
            x_train, y_train, batch_size=FLAGS.batch_size, epochs=stage_end,
            initial_epoch=state["epochs_done"], verbose=0, callbacks=callbacks,
        )
    train_seconds = time.perf_counter() - start
    probabilities = model.predict(x_test, batch_size=1000, verbose=0)
    test_error = 100.0 * float(np.mean(probabilities.argmax(axis=1) != y_test))
    run = {
        "network": network,
        "lambda": lam,
        "test_error": test_error,
        "initial_params": state["initial_params"],
        "initial_nodes": state["initial_nodes"],
        "nodes": live_nodes(model),
        "epoch_seconds": state["epoch_seconds"],
        "train_seconds": train_seconds,  # of this process's part when resumed
        "history": state["history"],
        "drops": state["drops"],
    }
    # A layer that lost every unit makes the output constant (the paper lists
    # such runs with 0 parameters); shrink keeps one dead unit there.
    run["collapsed"] = any(
        layer.active_units == 0 for layer in model.layers if hasattr(layer, "active_units")
    )
    if lam is not None:
        run["live_unit_check"] = live_unit_check(model, x_test)
    small = shrink(model, compile=False)
    shrunk = small.predict(x_test, batch_size=1000, verbose=0)
    run["params"] = count_params(small)
    run["shrink_max_abs_output_change"] = float(np.max(np.abs(shrunk - probabilities)))
    return run


def live_unit_check(model, x):
    """Why the live units are not dropped: their margins, and silent ones.

    For every hidden NodeDrop layer: the NodeDrop margins `sum(max(w, 0)) + b`
    of its live units (> 0: the condition cannot call them dead) and how many
    live units output exactly 0 on every example of `x` (dead in practice
    without the proof: units the condition misses). No silent units and
    margins well above 0 mean the units left are in use at this lambda.
    """
    rows = []
    for layer in model.layers:
        if not hasattr(layer, "unit_mask") or layer.name == "output":
            continue
        live = np.asarray(layer.unit_mask) > 0
        if not live.any():
            rows.append({"layer": layer.name, "live": 0})
            continue
        margins = unit_margins(layer)[live]
        outputs = keras.Model(model.inputs, layer.output).predict(x, batch_size=500, verbose=0)
        peak = outputs.max(axis=tuple(range(outputs.ndim - 1)))[live]
        rows.append({
            "layer": layer.name,
            "live": int(live.sum()),
            "min_margin": float(margins.min()),
            "median_margin": float(np.median(margins)),
            "silent": int((peak <= 0).sum()),
        })
    return rows


def measure_overhead(network, lam, data, rounds):
    """Per-epoch time of NodeDrop (penalty + callback) over the plain model.

    Both models start from the same weights and live in this process; their
    epochs alternate (plain, NodeDrop, then NodeDrop, plain, ...), so load
    from other jobs and clock drift hit both alike. Each round gives one
    paired ratio; the first pair is a warm-up (tracing) and is left out.
    """
    (x_train, y_train), _ = data
    keras.utils.set_random_seed(FLAGS.seed)
    plain = build_network(NETWORKS[network])
    regularized, nodedrop = darn.prepare(plain, "nodedrop", lam=lam, c=FLAGS.c,
                                         input_range=(0, 1))
    arms = {"plain": (plain, []), "nodedrop": (regularized, [nodedrop])}
    for model, _ in arms.values():
        model.compile(keras.optimizers.Adam(FLAGS.learning_rate),
                      "sparse_categorical_crossentropy", metrics=["accuracy"])
    epochs = {"plain": 0, "nodedrop": 0}
    seconds = {"plain": [], "nodedrop": []}
    drops = 0  # NodeDrop's events restart with every fit call
    for round_index in range(rounds + 1):
        order = ("plain", "nodedrop") if round_index % 2 == 0 else ("nodedrop", "plain")
        for arm in order:
            model, callbacks = arms[arm]
            timer = harness.epoch_timer()
            model.fit(x_train, y_train, batch_size=FLAGS.batch_size, verbose=0,
                      initial_epoch=epochs[arm], epochs=epochs[arm] + 1,
                      callbacks=callbacks + [timer])  # the timer includes NodeDrop's epoch end
            epochs[arm] += 1
            drops += len(nodedrop.events) if arm == "nodedrop" else 0
            if round_index:
                seconds[arm].append(timer.seconds[0])
    ratios = np.array(seconds["nodedrop"]) / np.array(seconds["plain"])
    return {
        "network": network,
        "lambda": lam,
        "rounds": rounds,
        "epoch_seconds": seconds,
        "paired_ratios": ratios.tolist(),
        "median_ratio": float(np.median(ratios)),
        "ratio_of_medians": float(np.median(seconds["nodedrop"]) / np.median(seconds["plain"])),
        "drops": drops,
    }


def overhead_runs(data):
    """`measure_overhead` on every `--overhead_networks` entry (none: skipped)."""
    overhead = []
    for network in FLAGS.overhead_networks:
        overhead.append(
            measure_overhead(network, FLAGS.overhead_lambda, data, FLAGS.overhead_rounds)
        )
        print(f"overhead {network}: {overhead[-1]['paired_ratios']}", flush=True)
    return overhead


def _ratio(run, baseline):
    steady = run["epoch_seconds"][1:] or run["epoch_seconds"]
    base = baseline["epoch_seconds"][1:] or baseline["epoch_seconds"]
    return float(np.median(steady) / np.median(base))


def summarize(runs):
    baselines = {r["network"]: r for r in runs if r["lambda"] is None}
    for run in runs:
        base = baselines.get(run["network"])
        run["pruned_pct"] = 100.0 * (1 - run["params"] / run["initial_params"])
        run["factor"] = run["initial_params"] / run["params"] if run["params"] else None
        run["nodes_pruned_pct"] = 100.0 * (1 - run["nodes"] / run["initial_nodes"])
        if base is not None:
            run["accuracy_drop_vs_baseline"] = run["test_error"] - base["test_error"]
            run["epoch_time_ratio"] = _ratio(run, base)
    regularized = [r for r in runs if r["lambda"] is not None and "epoch_time_ratio" in r]
    targets = {}
    good = [r for r in regularized if r["accuracy_drop_vs_baseline"] <= 1.0 and r["factor"]]
    best = max(good, key=lambda r: r["factor"], default=None)
    targets["best_factor_within_1pt"] = (
        {k: best[k] for k in ("network", "lambda", "factor", "accuracy_drop_vs_baseline")}
        if best else None
    )
    targets["params_10x_within_1pt_met"] = bool(best and best["factor"] >= 10)
    spreads = {}
    for lam in sorted({r["lambda"] for r in regularized}):
        sizes = [r["params"] for r in regularized if r["lambda"] == lam]
        if len(sizes) > 1 and min(sizes) > 0:
            spreads[str(lam)] = max(sizes) / min(sizes)
    targets["final_size_spread_per_lambda"] = spreads
    targets["size_spread_within_1_5_met"] = any(v <= 1.5 for v in spreads.values())
    ratios = [r["epoch_time_ratio"] for r in regularized]
    targets["epoch_time_ratio_median"] = float(np.median(ratios)) if ratios else None
    targets["epoch_time_ratio_max"] = float(np.max(ratios)) if ratios else None
    targets["epoch_time_ratio_min"] = float(np.min(ratios)) if ratios else None
    # Other jobs share the CPU: only a verdict that holds for every run counts.
    if not ratios:
        verdict = "NOT MEASURED"
    elif max(ratios) <= 1.15:
        verdict = "MET"
    elif min(ratios) > 1.15:
        verdict = "NOT MET"
    else:
        verdict = "INCONCLUSIVE"
    targets["epoch_time_ratio_verdict"] = verdict
    return targets


def overhead_verdict(overhead):
    """The time target, judged on the interleaved measurement."""
    if not overhead:
        return "NOT MEASURED"
    return "MET" if max(o["median_ratio"] for o in overhead) <= 1.15 else "NOT MET"


def _fmt_lambda(lam):
    return "baseline" if lam is None else f"{lam:.1e}"


def _params(n):
    return f"{n / 1e6:.3f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


def _standard_error(error_pct, n):
    """Binomial standard error, in points, of an error rate measured on n examples."""
    p = error_pct / 100.0
    return 100.0 * float(np.sqrt(p * (1 - p) / n))


def _shown_arguments(config):
    """The command-line arguments that shaped the results (not where files went)."""
    hidden = ("--name=", "--output_dir=", "--checkpoint_dir=")
    return [arg for arg in config.get("arguments", []) if not arg.startswith(hidden)]


def write_markdown(path, config, runs, targets, total_seconds, overhead=None):
    base_error = float(np.mean([r["test_error"] for r in runs if r["lambda"] is None]))
    lines = [
        "# NodeDrop on Fashion-MNIST (paper Table 1 networks)",
        "",
        f"Generated by `{' '.join(['benchmarks/nodedrop.py'] + _shown_arguments(config))}` "
        f"in {total_seconds / 60:.1f} min on "
        f"{config['machine']}; the runs' epochs took "
        f"{sum(sum(r['epoch_seconds']) for r in runs) / 60:.1f} min in all (less than the "
        "above when the runs resumed from checkpoints made earlier).",
        "",
        f"Setup: {config['num_train']} training / {config['num_test']} test examples "
        f"(stratified subsets), {config['epochs']} epochs, batch {config['batch_size']}, "
        f"Adam {config['learning_rate']}, C = {config['c']}, seed {config['seed']}, "
        f"{config['steps_per_run']} optimizer steps per run. The paper trained 480 epochs of "
        f"the full MNIST training set at batch 1024 ({PAPER_STEPS:,} steps, "
        f"{PAPER_EXAMPLES / 1e6:.1f}M examples seen); this run has "
        f"{config['steps_per_run'] / PAPER_STEPS:.0%} of those steps and "
        f"{config['epochs'] * config['num_train'] / PAPER_EXAMPLES:.1%} of those examples, so "
        "the sizes below are snapshots during training, not necessarily the converged sizes "
        "the paper reports (the table of drops over training shows whether they still "
        "move). Unless the setup line says batch 1024, the batch was made smaller than the "
        "paper's to get more optimizer steps out of the same compute; lambdas above the "
        "paper's 1e-5 recommendation act faster, which is why they are swept here.",
        "",
    ]
    if config.get("finetune_epochs"):
        lines += [
            f"Fine-tuning (not in the paper): NodeDrop runs train with the penalty for the "
            f"first {config['epochs'] - config['finetune_epochs']} epochs and without it "
            f"(lambda 0) for the last {config['finetune_epochs']}, with the dropped units "
            "kept masked; the baselines train all epochs unregularized, so both see the "
            "same steps. Their epoch time ratio includes the penalty-free epochs.",
            "",
        ]
    lines += [
        f"Test error is measured on {config['num_test']} images: one image is "
        f"{100 / config['num_test']:.2f} points, and the sampling standard error of an error "
        f"rate near {base_error:.0f} % is {_standard_error(base_error, config['num_test']):.2f} "
        "points, so differences from the baseline below about one point are within noise.",
        "",
    ]
    rows = []
    for r in runs:
        factor = f"{r['factor']:.2f}" if r["factor"] else "-"
        ratio = f"{r['epoch_time_ratio']:.2f}" if r.get("epoch_time_ratio") else "-"
        change = f"{r['shrink_max_abs_output_change']:.1e}"
        if r["collapsed"]:
            change += " (collapsed)"
        rows.append([
            r["network"], _fmt_lambda(r["lambda"]), f"{r['test_error']:.2f}", _params(r["params"]),
            f"{r['pruned_pct']:.2f}", factor, r["nodes"], f"{r['nodes_pruned_pct']:.2f}", ratio,
            change,
        ])
    lines += harness.markdown_table(
        ["network", "lambda", "test error %", "parameters", "pruned %", "factor", "nodes",
         "nodes pruned %", "epoch time ratio", "shrink max abs output change"],
        rows,
    )
    best = targets["best_factor_within_1pt"]
    lines += [
        "",
        "Parameters count the shrunk model (`keras_darn.shrink`, masks removed); nodes are "
        "the hidden Conv2D/Dense units (output layer excluded). Epoch time ratio: median "
        "seconds per epoch (first epoch excluded) of the run over its network's baseline, "
        "NodeDrop's per-epoch check included; other jobs shared the CPU, so ratios carry "
        "noise. 'collapsed': a layer lost every unit, the network outputs a constant "
        "(the paper lists such runs with 0 parameters; shrink keeps one dead unit). "
        "Shrink output change: largest |difference| of the softmax outputs of the shrunk "
        "and the masked model on the test subset (float rounding only: the shrunk model "
        "sums fewer terms).",
        "",
        "## Goals checked",
        "",
        f"- At least 10x fewer parameters within 1.0 point of the baseline's accuracy: "
        f"{'MET' if targets['params_10x_within_1pt_met'] else 'NOT MET'}"
        + (
            f" (best: {best['network']} lambda {best['lambda']:.1e}, factor "
            f"{best['factor']:.2f}, error {best['accuracy_drop_vs_baseline']:+.2f} points)"
            if best else " (no run within 1 point)"
        ),
        "- Final parameters DENSE160..DENSE640 within 1.5x of each other for one lambda: "
        + (
            f"{'MET' if targets['size_spread_within_1_5_met'] else 'NOT MET'} (max/min per "
            "lambda: "
            + ", ".join(f"{float(k):.1e}: {v:.2f}" for k, v in
                        targets["final_size_spread_per_lambda"].items())
            + ")"
            if targets["final_size_spread_per_lambda"]
            else "NOT MEASURED (no lambda ran on two networks here)"
        ),
        "- Per-epoch training time with regularizer and callback at most 1.15x the plain "
        f"model's, interleaved measurement below: {overhead_verdict(overhead)}. (From the "
        "sweep's separate runs, which other jobs' load can skew: "
        f"{targets['epoch_time_ratio_verdict']}, median "
        f"{targets['epoch_time_ratio_median']:.2f}, min {targets['epoch_time_ratio_min']:.2f}, "
        f"max {targets['epoch_time_ratio_max']:.2f}.)",
        "",
        f"Plot: `{os.path.basename(path)[:-3]}_sizes.png` (final against initial parameters per "
        "lambda).",
        "",
    ]
    lines += drops_over_training(runs, config["epochs"])
    if overhead:
        lines += [
            "## Per-epoch time, interleaved",
            "",
            "`measure_overhead`: the plain model and its NodeDrop version (penalty on every "
            "hidden layer, callback checking every epoch) start from the same weights in one "
            "process and train alternate epochs (order swapped every round) on the sweep's "
            "data and batch size; a warm-up pair is left out. Ratio: NodeDrop epoch seconds "
            "over the plain epoch of the same round.",
            "",
        ]
        lines += harness.markdown_table(
            ["network", "lambda", "rounds", "plain s/epoch (median)", "NodeDrop s/epoch (median)",
             "paired ratio median", "min-max", "units dropped"],
            [
                [o["network"], f"{o['lambda']:.1e}", o["rounds"],
                 f"{np.median(o['epoch_seconds']['plain']):.2f}",
                 f"{np.median(o['epoch_seconds']['nodedrop']):.2f}", f"{o['median_ratio']:.3f}",
                 f"{min(o['paired_ratios']):.3f}-{max(o['paired_ratios']):.3f}", o["drops"]]
                for o in overhead
            ],
        )
        lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))


def drops_over_training(runs, epochs):
    """Markdown: live nodes through training and the live units' margins."""
    marks = sorted({1, max(1, epochs // 4), max(1, epochs // 2), max(1, 3 * epochs // 4), epochs})
    lines = [
        "## Drops over training",
        "",
        "Live hidden nodes after the given epochs (the callback's `live_units` log), the last "
        "epoch that dropped a unit, and for the live units at the end: the smallest and the "
        "median NodeDrop margin `sum(max(w, 0)) + b` over the layers (> 0: not provably "
        "dead) and how many output exactly 0 on every test image (dead in practice, missed "
        "by the condition); '-' where the run predates that check.",
        "",
    ]
    rows = []
    for r in runs:
        alive = r["history"].get("live_units")
        if r["lambda"] is None or not alive:
            continue
        before = [r["initial_nodes"]] + alive[:-1]
        dropped = [epoch for epoch, (a, b) in enumerate(zip(before, alive), 1) if b < a]
        check = [row for row in r.get("live_unit_check", []) if row["live"]]
        margins = (
            [f"{min(row['min_margin'] for row in check):.2f}",
             f"{np.median([row['median_margin'] for row in check]):.2f}",
             sum(row["silent"] for row in check)]
            if check else ["-", "-", "-"]
        )
        rows.append(
            [r["network"], _fmt_lambda(r["lambda"])]
            + [int(alive[m - 1]) for m in marks]
            + [dropped[-1] if dropped else "-"] + margins
        )
    lines += harness.markdown_table(
        ["network", "lambda"] + [f"epoch {m}" for m in marks]
        + ["last drop (epoch)", "min live margin", "median live margin", "silent live units"],
        rows,
    )
    return lines + [""]


def plot_sizes(runs, path, epochs):
    import matplotlib.ticker

    fig, (ax,) = harness.figure(width=5.5, height=4.5)
    lambdas = sorted({r["lambda"] for r in runs if r["lambda"] is not None})
    initial = sorted({r["initial_params"] for r in runs})
    ax.plot(initial, initial, "k--", label="no pruning")
    for lam in [None] + lambdas:
        label = "baseline (no penalty)" if lam is None else f"lambda {lam:.1e}"
        chosen = sorted(
            (r for r in runs if r["lambda"] == lam),
            key=lambda r: r["initial_params"],
        )
        if chosen:
            ax.plot(
                [r["initial_params"] for r in chosen], [r["params"] for r in chosen],
                "o-", label=label,
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    harness.label_axes(ax, "initial parameters (count, log scale)",
                       "final parameters after shrink (count, log scale)",
                       title=f"NodeDrop, Fashion-MNIST, {epochs} epochs", fontsize=8)
    harness.save_figure(fig, path)


def render(prefix):
    results = harness.read_json(prefix + ".json")
    runs = results["runs"]
    targets = summarize(runs)
    results["targets"] = targets
    harness.write_json(prefix + ".json", results)
    write_markdown(
        prefix + ".md", results["config"], runs, targets, results["total_seconds"],
        results.get("overhead"),
    )
    plot_sizes(runs, prefix + "_sizes.png", results["config"]["epochs"])
    with open(prefix + ".md") as f:
        print(f.read())


def main(argv):
    del argv
    harness.apply_quick({"num_train": 256, "num_test": 100, "epochs": 2, "lambdas": ["1e-3"],
                         "networks": ["DENSE160"], "overhead_networks": ["DENSE160"],
                         "overhead_rounds": 1})
    prefix = harness.result_prefix()
    if FLAGS.render_only:
        render(prefix)
        return
    if not 0 <= FLAGS.finetune_epochs < FLAGS.epochs:
        raise ValueError(
            "Received an invalid value for `--finetune_epochs`, expected an integer in "
            f"[0, --epochs) = [0, {FLAGS.epochs}). Received: {FLAGS.finetune_epochs}"
        )
    begin = time.perf_counter()
    data = harness.load_fashion(FLAGS.num_train, FLAGS.num_test, data_dir=FLAGS.data_dir)
    (x_train, y_train), (x_test, y_test) = data
    if FLAGS.overhead_only:
        results = harness.read_json(prefix + ".json")
        results["overhead"] = overhead_runs(data)
        harness.write_json(prefix + ".json", results)
        render(prefix)
        return
    lambdas = [None] + [float(v) for v in FLAGS.lambdas]
    config = {
        "dataset": "Fashion-MNIST (offline IDX files)",
        "num_train": len(y_train),
        "num_test": len(y_test),
        "epochs": FLAGS.epochs,
        "finetune_epochs": FLAGS.finetune_epochs,
        "batch_size": FLAGS.batch_size,
        "steps_per_run": FLAGS.epochs * int(np.ceil(len(y_train) / FLAGS.batch_size)),
        "learning_rate": FLAGS.learning_rate,
        "optimizer": "Adam",
        "c": FLAGS.c,
        "lambdas": lambdas,
        "networks": {name: NETWORKS[name] for name in FLAGS.networks},
        "seed": FLAGS.seed,
        "padding": "valid",
        "machine": harness.describe_machine(),
        "keras": keras.__version__,
        "arguments": sys.argv[1:],
    }
    runs = []
    for network in FLAGS.networks:
        for lam in lambdas:
            run = train_run(network, lam, data)
            runs.append(run)
            print(
                f"{network} lambda={_fmt_lambda(lam)}: error {run['test_error']:.2f}%, "
                f"params {run['params']} / {run['initial_params']}, nodes {run['nodes']}, "
                f"epoch s {[round(s, 1) for s in run['epoch_seconds']]}",
                flush=True,
            )
            harness.write_json(prefix + ".json", {"config": config, "runs": runs, "complete": False})
    overhead = overhead_runs(data)
    total = time.perf_counter() - begin
    harness.write_json(prefix + ".json", {"config": config, "runs": runs, "overhead": overhead,
                                          "complete": True, "total_seconds": total})
    render(prefix)


if __name__ == "__main__":
    app.run(main)
