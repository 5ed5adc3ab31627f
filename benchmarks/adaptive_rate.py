"""Benchmark: adaptive pruning rate and auxiliary layer (Esfandiarpoor et al.), Tables I-V.

The paper's MLP 80-60-40 (ReLU, softmax 10) on MNIST downsampled to 10x10,
10-fold cross-validation. MNIST is not available offline; we use

- **digits**: scikit-learn's 1,797 8x8 digits (the nearest offline analogue),
  with the paper's 10-fold cross-validation (StratifiedKFold, seed 0). The
  accuracy drop is measured on the held-out fold (about 180 images: one image
  is 0.56 points, so the 0.46-point threshold allows no lost image and the
  1.0-point threshold one);
- **digits_pooled**: the same 10 folds, but the 10 fold networks live side by
  side in one model and are pruned in lock-step (one rate for all), every
  step judged by their cross-validation accuracy over all 1,797 held-out
  images (0.46 points = 8 images). This is the accuracy a 10-fold
  cross-validation reports (the paper's base accuracy 0.9646 is one); the
  per-fold protocol cannot resolve the paper's thresholds on folds this small;
- **fashion**: Fashion-MNIST downsampled (area) to 10x10, one stratified
  split (`--fashion_train` / `--fashion_test` images).

Per fold: the MLP (with connection masks) is trained `--base_epochs`; its
test accuracy is the base A0. For both accuracy-drop thresholds (0.46 and
1.0 points, Table III) the static rates 0.2 / 0.3 / 0.4 and the adaptive
rate (Algorithm 1: PR from 0.1 in steps of 0.05, carried over between steps;
with `--restart_arm` also PR reset to 0.1 every step) each start from the same
trained weights with a fresh Adam optimizer; "prune" removes the fraction PR
of every layer's remaining connections (smallest |w|; `--mode=std` instead
removes those below PR x the layer's weight std, Han et al.'s rule), "retrain"
is `--retrain_epochs` epochs (`--retrain_learning_rate`, default the training
rate). Then (Table IV, threshold 0.46) an auxiliary
fully connected ReLU layer of 20 / 40 / 60 units is inserted after
`--aux_after` in the adaptively pruned model, the network is retrained
`--aux_epochs` epochs and pruned again with the adaptive rate against the same
A0. For every adaptive model the structural pay-off is measured: units dead
on the input / output side, `mask_disconnected_units` + `keras_darn.shrink`
(outputs compared), parameters, and the energy estimate (Table V).

The peer, tensorflow-model-optimization's `prune_low_magnitude`, runs in its
own virtualenv and process (`benchmarks/peer_tfmot.py`) on fold 0 of each
dataset with the same MLP, the same data and as many fine-tuning epochs as
our adaptive run retrained; both are compared at the same accuracy floor by
remaining non-zero weights, TFLite size (raw and gzipped) and TFLite latency
(measured here, same interpreter, batch 1).

Writes `<output_dir>/<name>.json`, `<name>.md` and `<name>_steps.png`
(`--name`, default `adaptive_rate`; `--output_dir`, default `benchmarks/results`).
Variants are written under `benchmarks/results/runs/` (not committed).

    python benchmarks/adaptive_rate.py --peer_python=<tfmot venv>/bin/python   # 7 min on 2 CPU cores
    python benchmarks/adaptive_rate.py --quick                                 # a smoke run
    V="--output_dir=benchmarks/results/runs/adaptive_rate --nopeer"
    python benchmarks/adaptive_rate.py $V --folds=10 --time_budget_s=100000 --name=all_folds
    python benchmarks/adaptive_rate.py $V --mode=std --name=std --time_budget_s=100000
    python benchmarks/adaptive_rate.py $V --retrain_learning_rate=1e-4 --name=fine_tune
    python benchmarks/adaptive_rate.py $V --aux_init=factorized --name=aux_svd
    python benchmarks/adaptive_rate.py $V --datasets=digits_pooled --name=digits_pooled
    python benchmarks/adaptive_rate.py $V --datasets=digits_pooled,fashion --aux_init=factorized \
        --on_failure=lower_rate --name=lower_rate                        # 5 min
"""

import gzip
import json
import os
import subprocess
import tempfile
import time

import harness  # noqa: F401  (benchmarks/harness/; first: quiets TensorFlow)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from keras_darn import datasets  # noqa: E402
from keras_darn.export import to_tflite  # noqa: E402
from keras_darn.layers import to_prunable  # noqa: E402
from keras_darn.methods import connection as cp  # noqa: E402
from keras_darn.metrics import count_params  # noqa: E402
from keras_darn.metrics import measure_latency  # noqa: E402
from keras_darn.metrics import energy  # noqa: E402
from keras_darn.rebuild import shrink  # noqa: E402
from keras_darn.resizing import Target  # noqa: E402
from keras_darn.resizing import resize  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list(
    "datasets", ["digits", "fashion"],
    "digits, digits_pooled and/or fashion. digits_pooled: the 10 fold networks of digits' "
    "cross-validation pruned in lock-step (same rate), judged by their pooled held-out "
    "accuracy (all 1,797 images) instead of each by its own 180-image fold.",
)
flags.DEFINE_integer("folds", 10, "Cross-validation folds on digits (the paper: 10).")
flags.DEFINE_integer(
    "time_budget_s", 720, "No new digits fold starts unless it can end (at the mean fold time) before this."
)
flags.DEFINE_integer("fashion_train", 8000, "Fashion-MNIST training images (stratified subset).")
flags.DEFINE_integer("fashion_test", 3000, "Fashion-MNIST test images (stratified subset).")
flags.DEFINE_list("thresholds", ["0.46", "1.0"], "Allowed accuracy drops, in points.")
flags.DEFINE_list("static_rates", ["0.2", "0.3", "0.4"], "Static pruning rates.")
flags.DEFINE_list("aux_units", ["20", "40", "60"], "Auxiliary layer widths.")
flags.DEFINE_string("aux_after", "h80", "Layer the auxiliary layer follows.")
flags.DEFINE_enum(
    "aux_init", "random", ["random", "factorized"],
    "Initialisation of the auxiliary layer and the layer after it: fresh random weights (the paper), "
    "or a truncated SVD of that layer's kernel (`insert_auxiliary_layer(factorized=True)`, not in the "
    "paper: the network starts from the best low-rank approximation of the pruned one).",
)
flags.DEFINE_integer("base_epochs", 40, "Epochs of the initial training (digits).")
flags.DEFINE_integer("retrain_epochs", 2, "Epochs of every retraining (digits).")
flags.DEFINE_integer("fashion_base_epochs", 15, "Epochs of the initial training (fashion).")
flags.DEFINE_integer("fashion_retrain_epochs", 1, "Epochs of every retraining (fashion).")
flags.DEFINE_integer("aux_epochs", 10, "Epochs of training after inserting the auxiliary layer.")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
flags.DEFINE_float(
    "retrain_learning_rate", None,
    "Adam learning rate of every retraining after a pruning step, and of the peer's fine-tuning "
    "(default: --learning_rate). The paper does not give one; a lower rate fine-tunes the pruned "
    "network instead of moving it far from the base.",
)
flags.DEFINE_integer("max_steps", 60, "Most prune-retrain steps per run.")
flags.DEFINE_enum(
    "trial_reference", "step", ["step", "base"],
    "What the adaptive rate's trial drop is measured from: the accuracy before the step "
    "(the library's default) or the base accuracy (a trial stays above the floor without "
    "retraining).",
)
flags.DEFINE_enum(
    "on_failure", "stop", ["stop", "lower_rate"],
    "What the adaptive rate does after a step ends below the floor: stop (Algorithm 1) or "
    "retry it with PR lowered by 0.05 (not in the paper), ending only at PR = 0.1.",
)
flags.DEFINE_enum(
    "mode", "fraction", ["fraction", "threshold", "std"],
    "What a pruning rate PR removes (`prune_connections`): the fraction PR of each layer's live "
    "weights, the weights with |w| < PR, or those with |w| < PR x the layer's weight std (Han et "
    "al.'s rule, which the paper builds on).",
)
flags.DEFINE_boolean(
    "restart_arm", True,
    "Also run the adaptive rate with PR reset to 0.1 at every step (restart_rate=True), "
    "the other reading of the paper's pseudocode.",
)
flags.DEFINE_boolean("peer", True, "Run the tfmot peer.")
flags.DEFINE_string(
    "peer_python", None,
    "Python of the virtualenv with tensorflow-model-optimization (see peer_tfmot.py); without it "
    "the result records that the peer did not run.")
harness.define_seed_flag()
harness.define_output_flags("adaptive_rate")
harness.define_quick_flag()
flags.DEFINE_boolean("rerender", False, "Only rewrite the markdown and plot from the saved JSON.")

WIDTHS = (80, 60, 40)
RESTART_ARM = "adaptive (restart)"
SPLITS = {
    "digits": "10-fold CV",
    "digits_pooled": "10-fold CV, the 10 fold networks pruned in lock-step and judged by their "
                     "pooled held-out accuracy over all 1,797 images; weights are per network",
}


def networks_shown(name):
    """Which networks the per-step tables and the plot of dataset `name` show."""
    return "all fold networks" if name == "digits_pooled" else "fold 0"


def arm_names():
    """Static rates, the adaptive rate (PR carried over) and, optionally, PR restarted."""
    return [f"static {r}" for r in FLAGS.static_rates] + ["adaptive"] + (
        [RESTART_ARM] if FLAGS.restart_arm else []
    )


def digits_folds():
    """Yields `(fold, x_train, y_train, x_test, y_test)` of the 10-fold StratifiedKFold."""
    from sklearn.model_selection import StratifiedKFold

    x, y = datasets.load_digits(split=False)
    x = datasets.to_float_vectors(x)
    folds = StratifiedKFold(n_splits=10, shuffle=True, random_state=FLAGS.seed)
    for fold, (train, test) in enumerate(folds.split(x, y)):
        if fold >= FLAGS.folds:
            return
        yield fold, x[train], y[train].astype("int64"), x[test], y[test].astype("int64")


def pooled_digits_split():
    """All folds as one split of lists, one array per fold network.

    Training sets are cut to the shortest (1,617 images: at most one image
    left out of a fold) so that one `fit` steps every network; test sets are
    zero-padded to the longest and `pooled_evaluator` ignores the padding.
    """
    folds = list(digits_folds())
    train_length = min(len(f[1]) for f in folds)
    test_length = max(len(f[3]) for f in folds)
    x_train = [f[1][:train_length] for f in folds]
    y_train = [f[2][:train_length] for f in folds]
    x_test = [np.pad(f[3], ((0, test_length - len(f[3])), (0, 0))) for f in folds]
    y_test = [f[4] for f in folds]
    return x_train, y_train, x_test, y_test


def load_splits(name):
    """Yields `(fold, x_train, y_train, x_test, y_test)` with flat float inputs.

    For `digits_pooled` there is one split whose entries are lists (one
    array per fold network, see `pooled_digits_split`).
    """
    if name == "digits":
        yield from digits_folds()
        return
    if name == "digits_pooled":
        yield (0, *pooled_digits_split())
        return
    import tensorflow as tf

    (x_train, y_train), (x_test, y_test) = harness.load_fashion(
        FLAGS.fashion_train, FLAGS.fashion_test, seed=FLAGS.seed)

    def small(x):
        images = tf.image.resize(x, (10, 10), method="area")
        return images.numpy().reshape(len(x), -1)

    yield 0, small(x_train), y_train.astype("int64"), small(x_test), y_test.astype("int64")


def build_model(inputs, nets=1):
    """The MLP 80-60-40; with `nets > 1`, that many side by side in one model.

    The stacked networks share nothing: network k has input `f{k}_in`,
    layers `f{k}_h80` ... `f{k}_out` and its own loss term, so one `fit`
    trains each exactly as alone (Adam is per weight), and pruning,
    which works per layer, prunes each by its own weights.
    """
    if nets == 1:
        layers = [keras.Input((inputs,))]
        layers += [keras.layers.Dense(w, activation="relu", name=f"h{w}") for w in WIDTHS]
        layers.append(keras.layers.Dense(10, activation="softmax", name="out"))
        return to_prunable(keras.Sequential(layers), connection_mask=True)
    model_inputs, outputs = [], []
    for k in range(nets):
        x = keras.Input((inputs,), name=f"f{k}_in")
        model_inputs.append(x)
        for w in WIDTHS:
            x = keras.layers.Dense(w, activation="relu", name=f"f{k}_h{w}")(x)
        outputs.append(keras.layers.Dense(10, activation="softmax", name=f"f{k}_out")(x))
    return to_prunable(keras.Model(model_inputs, outputs), connection_mask=True)


def pooled_evaluator(x_tests, y_tests):
    """Cross-validation accuracy of stacked fold networks: every held-out image once.

    Network k predicts its own (padded) test fold `x_tests[k]`; the accuracy
    is over the `sum(len(y))` real images, so on digits one image is 0.056
    points instead of 0.56 on a single fold.
    """
    total = sum(len(y) for y in y_tests)

    def evaluate(model):
        outputs = model(x_tests, training=False)
        correct = sum(
            int(np.sum(np.argmax(keras.ops.convert_to_numpy(out)[: len(y)], axis=-1) == y))
            for out, y in zip(outputs, y_tests)
        )
        return correct / total

    return evaluate


def evaluator(x_test, y_test):
    if isinstance(x_test, list):
        return pooled_evaluator(x_test, y_test)
    return cp.accuracy_evaluator(x_test, y_test)


def retrain_learning_rate():
    return FLAGS.retrain_learning_rate or FLAGS.learning_rate


def compile_adam(model, learning_rate):
    # No metrics: accuracy is measured by the evaluators, and a stacked model
    # would need one metric list per output.
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy")


def summary(result, seconds, nets=1):
    """A run's figures from its `Result`; weights are per network (totals / `nets` when stacked)."""
    run = result.history
    history = [dict(row) for row in run["steps"]]
    accepted = [row for row in history if row["accepted"]]
    for row in history:
        row["remaining_weights"] /= nets
    accuracy = accepted[-1]["accuracy"] if accepted else run["initial_accuracy"]
    remaining = accepted[-1]["remaining_weights"] if accepted else run["initial_weights"] / nets
    return {
        "remaining_weights": remaining,
        "accuracy": accuracy,
        "below_floor": accuracy < run["accuracy_floor"] - 1e-9,
        "failed": not accepted,
        "accepted_steps": len(accepted),
        "prune_retrain_steps": len(history),
        "trial_evaluations": sum(len(row["trials"]) for row in history),
        "seconds": seconds,
        "history": history,
    }


def prune(model, method, threshold, x_train, y_train, evaluate, base, retrain_epochs, **options):
    """`method` through the front door on a copy of `model`; the masked pruned copy comes back."""
    return resize(
        model, method, Target(max_accuracy_drop=float(threshold) / 100), x=x_train, y=y_train,
        epochs=retrain_epochs, evaluate=evaluate, base_accuracy=base, max_steps=FLAGS.max_steps,
        mode=FLAGS.mode, batch_size=FLAGS.batch_size, shrink=False, **options,
    )


def hidden_widths(model):
    return [layer.units for layer in model.layers
            if hasattr(layer, "units") and not layer.name.endswith("out")]


def structure(model, x_test, nets=1):
    """Dead units, mask_disconnected_units + shrink, parameters, energy (per network)."""
    dead = cp.dead_units(model)
    widths_before = hidden_widths(model)
    remaining_masked = cp.remaining_weights(model)
    expected = np.asarray(model.predict(x_test, verbose=0))
    switched = cp.mask_disconnected_units(model)
    small = shrink(model, compile=False)
    return {
        "dead_incoming": sum(len(d["incoming"]) for d in dead.values()) / nets,
        "dead_outgoing": sum(len(d["outgoing"]) for d in dead.values()) / nets,
        "units_switched_off": sum(len(u) for u in switched.values()) / nets,
        "hidden_widths_before": widths_before,
        "hidden_widths_after": hidden_widths(small),
        "params_masked_model": count_params(model) / nets,
        "params_shrunk": count_params(small) / nets,
        "remaining_weights_masked": remaining_masked / nets,
        "remaining_weights_shrunk": cp.remaining_weights(small) / nets,
        "max_output_change": float(np.abs(np.asarray(small.predict(x_test, verbose=0)) - expected).max()),
        "energy_nj": {
            dtype: energy.estimate_energy(small, dtype=dtype) / 1000 / nets
            for dtype in energy.ENERGY_COSTS_45NM
        },
        "energy_nj_multiplies_only_float32":
            energy.estimate_energy(small, include_additions=False) / 1000 / nets,
    }, small


def epochs(name):
    """(base epochs, retrain epochs) of a dataset."""
    if name == "fashion":
        return FLAGS.fashion_base_epochs, FLAGS.fashion_retrain_epochs
    return FLAGS.base_epochs, FLAGS.retrain_epochs


def run_fold(name, fold, x_train, y_train, x_test, y_test, log):
    keras.utils.set_random_seed(FLAGS.seed + fold)
    base_epochs, retrain_epochs = epochs(name)
    nets = len(x_train) if isinstance(x_train, list) else 1
    model = build_model((x_train[0] if nets > 1 else x_train).shape[1], nets)
    compile_adam(model, FLAGS.learning_rate)
    start = time.time()
    model.fit(x_train, y_train, epochs=base_epochs, batch_size=FLAGS.batch_size, verbose=0)
    evaluate = evaluator(x_test, y_test)
    base = evaluate(model)
    out = {
        "fold": fold,
        "nets": nets,
        "base_accuracy": base,
        "initial_weights": cp.remaining_weights(model) / nets,
        "train_seconds": time.time() - start,
        "runs": {},
    }
    log(f"{name} fold {fold}: base accuracy {base:.4f} ({out['train_seconds']:.0f} s)")
    adaptive_state = {}
    for threshold in FLAGS.thresholds:
        for arm in arm_names():
            compile_adam(model, retrain_learning_rate())  # a fresh optimizer for every arm
            t = time.time()
            if arm.startswith("static"):
                result = prune(model, "weight_magnitude", threshold, x_train, y_train, evaluate,
                               base, retrain_epochs, rate=float(arm.split()[1]))
            else:
                result = prune(
                    model, "adaptive_rate", threshold, x_train, y_train, evaluate, base,
                    retrain_epochs, restart_rate=arm == RESTART_ARM,
                    trial_reference=FLAGS.trial_reference, on_failure=FLAGS.on_failure,
                )
            pruned = result.model  # the masked copy; `model` keeps its trained weights
            if arm == "adaptive":
                adaptive_state[threshold] = pruned.get_weights()
            entry = summary(result, time.time() - t, nets)
            if arm == "adaptive":
                entry["structure"], small = structure(pruned, x_test, nets)
                if threshold == FLAGS.thresholds[0]:
                    adaptive_state["shrunk"] = small
            out["runs"][f"{arm} @ {threshold}"] = entry
            log(
                f"  {arm:>10} @ {threshold}: {entry['remaining_weights']} weights, "
                f"acc {entry['accuracy']:.4f}, {entry['accepted_steps']} steps "
                f"({'FAILED, ' if entry['failed'] else ''}{entry['seconds']:.0f} s)"
            )
    threshold = FLAGS.thresholds[0]
    for units in [int(u) for u in FLAGS.aux_units]:
        model.set_weights(adaptive_state[threshold])
        t = time.time()
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            deeper = model
            for k in range(nets):
                deeper = cp.insert_auxiliary_layer(
                    deeper, after=FLAGS.aux_after if nets == 1 else f"f{k}_{FLAGS.aux_after}",
                    units=units, compile=False, factorized=FLAGS.aux_init == "factorized",
                )
        at_insertion = evaluate(deeper)
        compile_adam(deeper, FLAGS.learning_rate)
        deeper.fit(x_train, y_train, epochs=FLAGS.aux_epochs, batch_size=FLAGS.batch_size, verbose=0)
        if FLAGS.retrain_learning_rate is not None:  # the prune-retrain steps fine-tune
            compile_adam(deeper, FLAGS.retrain_learning_rate)
        after_insertion = evaluate(deeper)
        inserted_weights = cp.remaining_weights(deeper) / nets
        result = prune(
            deeper, "adaptive_rate", threshold, x_train, y_train, evaluate, base, retrain_epochs,
            trial_reference=FLAGS.trial_reference, on_failure=FLAGS.on_failure,
        )
        entry = summary(result, time.time() - t, nets)
        entry.update(accuracy_at_insertion=at_insertion, accuracy_after_insertion=after_insertion,
                     weights_after_insertion=inserted_weights)
        entry["structure"], _ = structure(result.model, x_test, nets)
        out["runs"][f"auxiliary {units} @ {threshold}"] = entry
        log(
            f"  auxiliary {units} @ {threshold}: {entry['remaining_weights']} weights "
            f"(after insertion {inserted_weights}, acc {at_insertion:.4f} -> {after_insertion:.4f} "
            f"after {FLAGS.aux_epochs} epochs), acc "
            f"{entry['accuracy']:.4f}, {entry['accepted_steps']} steps ({entry['seconds']:.0f} s)"
        )
    return out, adaptive_state.get("shrunk")


def run_peer(name, fold_data, ours, base_accuracy, tflite_dir, log):
    """tfmot in its own process; compares at the accuracy floor of threshold 0.46."""
    x_train, y_train, x_test, y_test = fold_data
    if FLAGS.peer_python is None:
        return {"error": "the peer did not run: no --peer_python given (see peer_tfmot.py)"}
    if not os.path.exists(FLAGS.peer_python):
        return {"error": f"peer virtualenv not found: {FLAGS.peer_python} (see peer_tfmot.py)"}
    data_path = os.path.join(tflite_dir, f"{name}_split.npz")
    np.savez(data_path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    output = os.path.join(tflite_dir, f"{name}_peer.json")
    adaptive = ours["runs"][f"adaptive @ {FLAGS.thresholds[0]}"]
    base_epochs, retrain_epochs = epochs(name)
    fine_tune = max(adaptive["prune_retrain_steps"] * retrain_epochs, 2)
    our_sparsity = 1 - adaptive["remaining_weights"] / ours["initial_weights"]
    sparsities = sorted({0.5, 0.6, 0.7, 0.8, 0.9, round(our_sparsity, 3)})
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("PYTHONPATH", None)
    command = [
        FLAGS.peer_python, os.path.join(os.path.dirname(__file__), "peer_tfmot.py"),
        f"--data={data_path}", f"--output={output}", f"--tflite_dir={tflite_dir}",
        f"--sparsities={','.join(str(s) for s in sparsities)}",
        f"--base_epochs={base_epochs}", f"--fine_tune_epochs={fine_tune}",
        f"--batch_size={FLAGS.batch_size}", f"--learning_rate={FLAGS.learning_rate}",
        f"--fine_tune_learning_rate={retrain_learning_rate()}",
        f"--seed={FLAGS.seed}",
    ]
    t = time.time()
    process = subprocess.run(command, env=env, capture_output=True, text=True)
    if process.returncode != 0:
        return {"error": process.stderr[-3000:], "command": command}
    with open(output) as f:
        peer = json.load(f)
    log(f"  peer ({time.time() - t:.0f} s): base accuracy {peer['base_accuracy']:.4f}")
    floor = base_accuracy - float(FLAGS.thresholds[0]) / 100
    x_one = x_test[:1]
    for run in peer["runs"]:
        with open(run["tflite_path"], "rb") as f:
            run["tflite_latency_ms"] = measure_latency(f.read(), x_one, repeats=200, warmup=20)["median"] * 1e3
    within = [r for r in peer["runs"] if r["accuracy"] >= floor - 1e-9]
    peer["at_our_floor"] = min(within, key=lambda r: r["nonzero_weights"]) if within else None
    peer["at_our_sparsity"] = min(
        peer["runs"], key=lambda r: abs(r["target_sparsity"] - round(our_sparsity, 3))
    )
    peer["accuracy_floor"] = floor
    return peer


def ours_tflite(small, x_test):
    tflite = to_tflite(small)
    return {
        "remaining_weights": cp.remaining_weights(small),
        "params": count_params(small),
        "tflite_bytes": len(tflite),
        "tflite_gzip_bytes": len(gzip.compress(tflite, 9)),
        "tflite_latency_ms": measure_latency(tflite, x_test[:1], repeats=200, warmup=20)["median"] * 1e3,
    }


def mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else float("nan")


def aggregate(folds):
    """Mean over folds of every arm; failures counted."""
    arms = list(folds[0]["runs"])
    table = {}
    for arm in arms:
        entries = [f["runs"][arm] for f in folds]
        table[arm] = {
            "remaining_weights": mean([e["remaining_weights"] for e in entries]),
            "remaining_weights_std": float(np.std([e["remaining_weights"] for e in entries])),
            "accuracy": mean([e["accuracy"] for e in entries]),
            "failed_folds": sum(e["failed"] for e in entries),
            "below_floor_folds": sum(e["below_floor"] for e in entries),
            "accepted_steps": mean([e["accepted_steps"] for e in entries]),
            "prune_retrain_steps": mean([e["prune_retrain_steps"] for e in entries]),
            "trial_evaluations": mean([e["trial_evaluations"] for e in entries]),
            "seconds": mean([e["seconds"] for e in entries]),
        }
        for key in ("accuracy_at_insertion", "accuracy_after_insertion"):
            if all(key in e for e in entries):
                table[arm][key] = mean([e[key] for e in entries])
        if "structure" in entries[0]:
            table[arm]["structure"] = {
                key: mean([e["structure"][key] for e in entries])
                for key in ("dead_incoming", "dead_outgoing", "units_switched_off", "params_masked_model",
                            "params_shrunk", "remaining_weights_shrunk", "max_output_change")
            }
            table[arm]["energy_nj"] = {
                d: mean([e["structure"]["energy_nj"][d] for e in entries]) for d in energy.ENERGY_COSTS_45NM
            }
            table[arm]["energy_nj_multiplies_only_float32"] = mean(
                [e["structure"]["energy_nj_multiplies_only_float32"] for e in entries]
            )
    table["base_accuracy"] = mean([f["base_accuracy"] for f in folds])
    table["initial_weights"] = folds[0]["initial_weights"]
    return table


def steps_to_reach(folds, arm, static_arm):
    """Accepted steps `arm` takes to keep no more weights than `static_arm` ends with, per fold.

    A fairer "fewer steps" comparison when the adaptive run goes on past the
    static run's compression: steps to the same compression, not to the end.

    Returns:
        `{"steps": mean over the folds that got there, "static_steps": the
        static run's mean over the same folds, "not_reached": folds that
        never got there}`.
    """
    steps, static_steps, not_reached = [], [], 0
    for fold in folds:
        goal = fold["runs"][static_arm]["remaining_weights"]
        accepted = [row for row in fold["runs"][arm]["history"] if row["accepted"]]
        if fold["initial_weights"] <= goal:
            reached = 0
        else:
            reached = next(
                (i + 1 for i, row in enumerate(accepted) if row["remaining_weights"] <= goal), None
            )
        if reached is None:
            not_reached += 1
            continue
        steps.append(reached)
        static_steps.append(fold["runs"][static_arm]["accepted_steps"])
    return {"steps": mean(steps), "static_steps": mean(static_steps), "not_reached": not_reached}


def _reach_text(reach, folds):
    if reach["not_reached"] == folds:
        return " The static run's weights were never reached."
    text = (f" Steps to reach the static run's weights (per fold): {reach['steps']:.1f} "
            f"against {reach['static_steps']:.1f}")
    if reach["not_reached"]:
        text += f", not reached in {reach['not_reached']} fold(s)"
    return text + "."


def auxiliary_lines(table):
    """Table IV and its target: the auxiliary-layer runs against adaptive without one."""
    t = FLAGS.thresholds[0]
    adaptive = table[f"adaptive @ {t}"]
    lines = [
        "",
        f"### Table IV: auxiliary layer after `{FLAGS.aux_after}`, then adaptive pruning (drop {t} pts)",
        "",
        "A fold whose retrained network (after insertion) does not reach the floor accepts no pruning "
        "step; it keeps its post-insertion weights and counts in \"below floor\" (an invalid result).",
        "",
    ]
    rows = [[
        "none (adaptive)", "-", f"{adaptive['remaining_weights']:.0f}", "-", f"{adaptive['accuracy']:.4f}",
        f"{adaptive['accepted_steps']:.1f}", adaptive["failed_folds"], adaptive["below_floor_folds"],
    ]]
    valid = {}
    for units in FLAGS.aux_units:
        e = table[f"auxiliary {units} @ {t}"]
        change = e["remaining_weights"] / adaptive["remaining_weights"] - 1
        if e["below_floor_folds"] == 0:
            valid[units] = e["remaining_weights"]
        inserted = (f"{e['accuracy_at_insertion']:.4f} -> {e['accuracy_after_insertion']:.4f}"
                    if "accuracy_at_insertion" in e else "-")
        rows.append([
            units, inserted, f"{e['remaining_weights']:.0f}", f"{change:+.1%}", f"{e['accuracy']:.4f}",
            f"{e['accepted_steps']:.1f}", e["failed_folds"], e["below_floor_folds"],
        ])
    lines += harness.markdown_table(
        ["auxiliary units", "accuracy at insertion -> after its training", "remaining weights",
         "vs adaptive without", "accuracy", "steps", "failed folds", "folds below floor"],
        rows,
    )
    if valid:
        best = min(valid, key=valid.get)
        verdict = (
            f"best valid: {best} units, {valid[best]:.0f} vs {adaptive['remaining_weights']:.0f} "
            f"({valid[best] / adaptive['remaining_weights'] - 1:+.1%}) -> "
            f"{'MET' if valid[best] < adaptive['remaining_weights'] else 'NOT MET'}"
        )
    else:
        verdict = "every auxiliary width has folds below the floor -> NOT MET"
    return lines + [
        "",
        f"Goal (an auxiliary layer lowers the remaining weights further; paper: -22 %): {verdict}",
    ]


def markdown(results):
    lines = [
        "# Adaptive pruning rate and auxiliary layer (Esfandiarpoor et al.)",
        "",
        f"Generated by `benchmarks/adaptive_rate.py`; every number below is in `{FLAGS.name}.json`.",
        "",
        f"Config: {json.dumps(results['config'])}",
        "",
    ]
    for name, data in results["datasets"].items():
        table = data["aggregate"]
        folds = len(data["folds"])
        lines += [
            f"## {name} ({folds} fold{'s' if folds > 1 else ''}; {data['split']})",
            "",
            f"Base accuracy {table['base_accuracy']:.4f}, {table['initial_weights']} kernel weights "
            f"before pruning. Means over folds; a run \"fails\" when its first step already ends below "
            "the floor (the paper's \"Failed\").",
            "",
            "### Table III: remaining weights (mean over folds) per rate and allowed accuracy drop",
            "",
        ]
        rows = []
        for arm in arm_names():
            cells = [arm]
            for t in FLAGS.thresholds:
                e = table[f"{arm} @ {t}"]
                cells.append(
                    f"{e['remaining_weights']:.0f} ± {e['remaining_weights_std']:.0f} / "
                    f"{e['accepted_steps']:.1f} (+{e['trial_evaluations']:.1f} trials) / "
                    f"{e['accuracy']:.4f} / {e['failed_folds']}"
                )
            rows.append(cells)
        lines += harness.markdown_table(
            ["pruning rate"] + [f"drop {t} pts: weights / steps / acc / failed" for t in FLAGS.thresholds],
            rows,
        )
        lines += ["", "Goals (adaptive vs the best static rate that did not fail, per threshold; "
                  "`adaptive` is the default, PR carried over between steps):", ""]
        for t in FLAGS.thresholds:
            statics = {
                r: table[f"static {r} @ {t}"] for r in FLAGS.static_rates
                if table[f"static {r} @ {t}"]["failed_folds"] < folds
            }
            if not statics:
                continue
            best = min(statics, key=lambda r: statics[r]["remaining_weights"])
            b = statics[best]
            for arm in arm_names()[len(FLAGS.static_rates):]:
                adaptive = table[f"{arm} @ {t}"]
                fewer_weights = adaptive["remaining_weights"] <= b["remaining_weights"]
                fewer_steps = adaptive["accepted_steps"] < b["accepted_steps"]
                reach = steps_to_reach(data["folds"], f"{arm} @ {t}", f"static {best} @ {t}")
                lines.append(
                    f"- drop {t}, {arm}: best static {best} keeps {b['remaining_weights']:.0f} weights in "
                    f"{b['accepted_steps']:.1f} steps; {arm} keeps {adaptive['remaining_weights']:.0f} in "
                    f"{adaptive['accepted_steps']:.1f} steps -> no more weights: "
                    f"{'MET' if fewer_weights else 'NOT MET'}; fewer steps: {'MET' if fewer_steps else 'NOT MET'}."
                    + _reach_text(reach, len(data["folds"]))
                )
        t = FLAGS.thresholds[0]  # the auxiliary layer and Tables I and II are shown at the first threshold
        if FLAGS.aux_units:
            lines += auxiliary_lines(table)
        lines += ["", "### Structural pay-off and energy (Table V costs, shrunk model, per inference)", ""]
        rows = []
        for arm in [f"adaptive @ {x}" for x in FLAGS.thresholds] + [
            f"auxiliary {u} @ {t}" for u in FLAGS.aux_units
        ]:
            e = table[arm]
            s = e["structure"]
            n = e["energy_nj"]
            rows.append([
                arm, f"{s['remaining_weights_shrunk']:.0f}",
                f"{s['dead_incoming']:.1f} / {s['dead_outgoing']:.1f}", f"{s['units_switched_off']:.1f}",
                f"{s['params_masked_model']:.0f} -> {s['params_shrunk']:.0f}", f"{s['max_output_change']:.1e}",
                f"{n['float32']:.1f} ({e['energy_nj_multiplies_only_float32']:.1f})", f"{n['float16']:.1f}",
                f"{n['int32']:.1f}", f"{n['int8']:.2f}",
            ])
        lines += harness.markdown_table(
            ["model", "live weights", "dead units (in / out)", "switched off", "params masked -> shrunk",
             "max output change", "float32 nJ (mult only)", "float16 nJ", "int32 nJ", "int8 nJ"],
            rows,
        )
        fold0 = data["folds"][0]["runs"]
        for arm, title in ((f"static 0.2 @ {t}", "Table I: static rate 0.2"), (f"adaptive @ {t}", "Table II: adaptive rate")):
            if arm not in fold0:
                continue
            per_network = ", weights per network" if name == "digits_pooled" else ""
            lines += ["", f"### {title}, {networks_shown(name)}{per_network}, drop {t} pts", ""]
            lines += harness.markdown_table(
                ["step", "rate", "remaining weights", "accuracy", "accuracy after pruning", "mean abs weight",
                 "accepted"],
                [
                    [row["step"], f"{row['rate']:.2f}", f"{row['remaining_weights']:.0f}",
                     f"{row['accuracy']:.4f}",
                     f"{row['accuracy_after_pruning']:.4f}", f"{row['mean_abs_weight']:.4f}", row["accepted"]]
                    for row in fold0[arm]["history"]
                ],
            )
        peer = data.get("peer")
        lines += ["", "### Peer: tensorflow-model-optimization `prune_low_magnitude` (fold 0)", ""]
        if name == "digits_pooled":
            lines.append("Not run on the stacked fold networks; see the per-fold `digits` protocol.")
        elif peer is None:
            lines.append("Not run (`--nopeer`).")
        elif "error" in peer:
            lines.append(f"The peer could not run: `{peer['error'][-500:]}`")
        else:
            ours = data["ours_tflite"]
            lines += [
                f"tfmot {peer['versions']['tensorflow_model_optimization']}, TF "
                f"{peer['versions']['tensorflow']} (own virtualenv and process). Its dense base accuracy "
                f"{peer['base_accuracy']:.4f}; floor {peer['accuracy_floor']:.4f} (our base - "
                f"{FLAGS.thresholds[0]} pts). Fine-tuning: {peer['fine_tune_epochs']} epochs (as many as our "
                "adaptive run retrained). TFLite float32, latency = median of 200 invokes, batch 1, same interpreter.",
                "",
            ]
            rows = [[
                f"keras_darn adaptive @ {FLAGS.thresholds[0]}, shrunk", f"{ours['accuracy']:.4f}",
                ours["remaining_weights"], ours["tflite_bytes"], ours["tflite_gzip_bytes"],
                f"{ours['tflite_latency_ms']:.4f}",
            ]]
            for label, run in (("tfmot, sparsest within the floor", peer["at_our_floor"]),
                               ("tfmot, at our sparsity", peer["at_our_sparsity"])):
                if run is None:
                    rows.append([label, "none of its runs reached the floor", None, None, None, None])
                else:
                    rows.append([
                        f"{label} (target {run['target_sparsity']})", f"{run['accuracy']:.4f}",
                        run["nonzero_weights"], run["tflite_bytes"], run["tflite_gzip_bytes"],
                        f"{run['tflite_latency_ms']:.4f}",
                    ])
            lines += harness.markdown_table(
                ["model", "accuracy", "non-zero weights", "TFLite bytes", "gzipped", "latency ms"], rows
            )
            lines += ["", "All tfmot runs: " + ", ".join(
                f"{r['target_sparsity']}: acc {r['accuracy']:.4f}, {r['nonzero_weights']} weights"
                for r in peer["runs"])]
        lines.append("")
    lines += [
        "## Notes",
        "",
        f"- Wall clock: {results['seconds']:.0f} s on {results['machine']}.",
        "- \"steps\" are accepted prune-retrain steps; the adaptive rate also evaluates trial rates "
        "(no retraining), counted separately.",
        "- The digits folds are those of a 10-fold StratifiedKFold; fewer than 10 were run when the "
        "time budget ran out (see the fold count in each heading).",
        "- A run that accepts no step keeps the model it started from and reports that model's accuracy "
        "(for an auxiliary layer: the accuracy after insertion and retraining, which can be below the floor).",
        "- Digits test folds hold about 180 images: 0.46 points allows no lost image and 1.0 point one, so "
        "single images decide steps; the fold-to-fold spread (±) is large.",
    ]
    if "digits_pooled" in results["datasets"]:
        lines.append(
            "- digits_pooled prunes the 10 fold networks together (one model, one rate for all) and "
            "judges every step by the cross-validation accuracy over all 1,797 held-out images (0.46 "
            "points = 8 images); its training sets are cut to 1,617 images (at most one image left "
            "out of a fold)."
        )
    return "\n".join(lines) + "\n"


def plot(results, path):
    names = list(results["datasets"])
    fig, axes = harness.figure(ncols=len(names), width=6, height=4)
    t = FLAGS.thresholds[0]
    for ax, name in zip(axes, names):
        runs = results["datasets"][name]["folds"][0]["runs"]
        initial = results["datasets"][name]["folds"][0]["initial_weights"]
        for arm in arm_names():
            history = [h for h in runs[f"{arm} @ {t}"]["history"] if h["accepted"]]
            ax.plot([0] + [h["step"] for h in history], [initial] + [h["remaining_weights"] for h in history],
                    marker="o", label=arm)
        harness.label_axes(ax, "accepted prune-retrain steps", "remaining non-zero weights (count)",
                           title=f"{name}, {networks_shown(name)}, drop {t} pts")
    harness.save_figure(fig, path, dpi=100)


def rerender():
    """Rewrites markdown and plot from the JSON (older JSON: marks failed auxiliary runs)."""
    results = harness.read_json(result_path(".json"))
    for key in ("thresholds", "static_rates", "aux_units", "aux_after", "retrain_epochs", "restart_arm"):
        if key in results["config"]:
            FLAGS[key].value = results["config"][key]
    for data in results["datasets"].values():
        for fold in data["folds"]:
            for arm, entry in fold["runs"].items():
                if "below_floor" in entry:
                    continue
                if entry["failed"] and "accuracy_after_insertion" in entry:
                    entry["accuracy"] = entry["accuracy_after_insertion"]
                drop = float(arm.rsplit("@ ", 1)[1]) / 100
                entry["below_floor"] = entry["accuracy"] < fold["base_accuracy"] - drop - 1e-9
        data["aggregate"] = aggregate(data["folds"])
    write_results(results)


def result_path(suffix):
    """`<output_dir>/<name><suffix>`, e.g. `result_path(".json")`."""
    return harness.result_prefix() + suffix


def write_results(results, report_too=True):
    """Writes `<name>.json`, and with `report_too` also `<name>.md` and `<name>_steps.png`."""
    harness.write_json(result_path(".json"), results)
    if report_too:
        harness.write_markdown(result_path(".md"), markdown(results))
        plot(results, result_path("_steps.png"))


def main(argv):
    del argv
    harness.apply_quick({"datasets": ["digits"], "folds": 1, "base_epochs": 3, "retrain_epochs": 1,
                         "static_rates": ["0.3"], "aux_units": ["20"], "aux_epochs": 1,
                         "thresholds": ["1.0"], "max_steps": 3, "restart_arm": False,
                         "peer": False})
    if FLAGS.rerender:
        rerender()
        return
    start = time.time()
    tflite_dir = tempfile.mkdtemp(prefix="adaptive_rate_")

    def log(message):
        print(f"[{time.time() - start:6.0f} s] {message}", flush=True)

    results = {
        "config": {k: FLAGS[k].value for k in (
            "datasets", "folds", "time_budget_s", "fashion_train", "fashion_test", "thresholds",
            "static_rates", "aux_units", "aux_after", "aux_init", "base_epochs", "retrain_epochs", "fashion_base_epochs",
            "fashion_retrain_epochs", "aux_epochs",
            "batch_size", "learning_rate", "retrain_learning_rate", "max_steps", "mode", "restart_arm",
            "trial_reference", "on_failure",
            "seed")},
        "machine": harness.describe_machine(),
        "datasets": {},
    }
    for name in FLAGS.datasets:
        folds, peer_data, shrunk0 = [], None, None
        for fold, x_train, y_train, x_test, y_test in load_splits(name):
            fold_seconds = (time.time() - start) / len(folds) if folds else 0.0
            if name == "digits" and folds and time.time() - start + fold_seconds > FLAGS.time_budget_s:
                log(f"time budget reached: {len(folds)} digits folds run")
                break
            result, shrunk = run_fold(name, fold, x_train, y_train, x_test, y_test, log)
            folds.append(result)
            if fold == 0:
                peer_data, shrunk0 = (x_train, y_train, x_test, y_test), shrunk
            entry = {"folds": folds, "aggregate": aggregate(folds), "split": SPLITS.get(
                name, f"{FLAGS.fashion_train} train / {FLAGS.fashion_test} test images, 10x10")}
            results["datasets"][name] = entry
            results["seconds"] = time.time() - start
            write_results(results, report_too=False)  # a partial run keeps what it measured
        entry = results["datasets"][name]
        if name == "digits_pooled":  # the peer and TFLite run on one network: see `digits`
            continue
        ours = ours_tflite(shrunk0, peer_data[2])
        ours["accuracy"] = folds[0]["runs"][f"adaptive @ {FLAGS.thresholds[0]}"]["accuracy"]
        entry["ours_tflite"] = ours
        if FLAGS.peer:
            entry["peer"] = run_peer(name, peer_data, folds[0], folds[0]["base_accuracy"], tflite_dir, log)
    results["seconds"] = time.time() - start
    write_results(results)
    log("done")


if __name__ == "__main__":
    app.run(main)
