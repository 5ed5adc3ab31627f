"""Benchmark: *The Incredible Shrinking Neural Network* on digits and Fashion-MNIST.

For each dataset and network (1 hidden layer x 100 sigmoid units, and 2 x 50,
10 sigmoid outputs, squared-error loss, as in the paper) a network is
trained, then pruned one unit at a time with no retraining by

- Single Overall Ranking (Algorithm I) and Iterative Re-ranking (Algorithm
  II),
- with brute force, 1st-order Taylor and 2nd-order Taylor scores (and a
  random ranking as a floor),

down to one unit per layer. Units are ranked on a validation split; every
step is also evaluated on the test split (the curves). Error surfaces (loss
against a gain alpha in [0, 10] on the removed unit, Figures 5-7 and 10-12)
are recorded every `surface_every` removals of the iterative runs. In the
same process, batched brute force is timed against the paper's
one-unit-per-pass loop on the same validation data.

Goals checked: iterative brute force removes >= 50 % of the
1-layer net's units with <= 1 point test accuracy loss; the 2nd-order curve
lies below the 1st-order one on average (checked per curve, and averaged over
all curves and over each algorithm's); batched brute force >= 5x faster
than the loop.

Writes `<output_dir>/<name>.json`, `<name>.md` and PNGs
`<name>_<dataset>_<net>_<algorithm>.png` (curves) and
`<name>_<dataset>_<net>_surface_<criterion>.png` (`--name`, default
`shrinking`; `--output_dir`, default `benchmarks/results`).

    python benchmarks/shrinking.py     # the defaults took 15 min on 2 CPU cores
    python benchmarks/shrinking.py --report_only   # rewrite shrinking.md from shrinking.json
    python benchmarks/shrinking.py --quick         # a smoke run, under results/runs/quick
"""

import time

import harness  # noqa: F401  (benchmarks/harness/; first: quiets TensorFlow)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

import keras_darn as darn  # noqa: E402
from keras_darn import plots  # noqa: E402
from keras_darn.criteria.brute_force import brute_force_effects  # noqa: E402
from keras_darn.criteria.probes import ProbedModel  # noqa: E402

FLAGS = flags.FLAGS
harness.define_data_flag()
flags.DEFINE_list("datasets", ["digits", "fashion_mnist"], "Datasets.")
flags.DEFINE_list("nets", ["1x100", "2x50"], "Hidden layers x units.")
flags.DEFINE_list("criteria", ["brute_force", "taylor1", "taylor2"], "Criteria.")
flags.DEFINE_list("algorithms", ["single", "iterative"], "Algorithms.")
flags.DEFINE_bool("random_baseline", True, "Also a random single ranking.")
flags.DEFINE_float("val_fraction", 0.2, "Digits: validation share of the training split.")
flags.DEFINE_integer("fmnist_train", 20000, "Fashion-MNIST training examples.")
flags.DEFINE_integer("fmnist_val", 5000, "Fashion-MNIST validation (ranking) examples.")
flags.DEFINE_integer("fmnist_test", 10000, "Fashion-MNIST test examples.")
flags.DEFINE_integer("digits_epochs", 300, "Training epochs on digits.")
flags.DEFINE_integer("fmnist_epochs", 30, "Training epochs on Fashion-MNIST.")
flags.DEFINE_float("learning_rate", 3e-3, "Adam learning rate.")
flags.DEFINE_integer("batch_size", 32, "Training batch size.")
flags.DEFINE_float(
    "dropout", 0.0,
    "Dropout rate after every hidden layer during training (not in the paper; 0 = none). "
    "Dropout makes units less dependent on each other; pruning itself never retrains.",
)
flags.DEFINE_integer("surface_every", 10, "Error surface every N removals (iterative).")
flags.DEFINE_integer("num_alphas", 101, "Gains alpha in [0, 10] per error surface.")
flags.DEFINE_integer("speed_repeats", 3, "Timed repeats of batched and loop brute force.")
harness.define_seed_flag()
flags.DEFINE_list("extra_seeds", ["1", "2"],
                  "More seeds (training and data split) for the 50 % target: only iterative "
                  "brute force on the 1-layer nets is rerun for them.")
harness.define_output_flags("shrinking")
harness.define_quick_flag()
flags.DEFINE_bool("report_only", False,
                  "Rewrite `<name>.md` (targets included) from the existing `<name>.json`; "
                  "trains nothing.")

ACCURACY_LOSS = 0.01  # the "1 point" of the goal


def load(name, seed):
    """`(train, val, test)` with flattened inputs in [0, 1] and one-hot targets."""
    if name == "digits":
        (x_train, y_train), (x_test, y_test) = harness.load_digits(images=False)
        order = np.random.default_rng(seed).permutation(len(x_train))
        cut = int(round(len(x_train) * FLAGS.val_fraction))
        x_val, y_val = x_train[order[:cut]], y_train[order[:cut]]
        x_train, y_train = x_train[order[cut:]], y_train[order[cut:]]
    elif name == "fashion_mnist":
        (x_train, y_train), (x_val, y_val), (x_test, y_test) = harness.load_fashion_split(
            FLAGS.fmnist_train, FLAGS.fmnist_val, FLAGS.fmnist_test, seed=seed,
            data_dir=FLAGS.data_dir, images=False)
    else:
        raise ValueError(f"Unknown dataset {name!r}")

    def prepare(x, y):
        return x, np.eye(10, dtype="float32")[y]

    return prepare(x_train, y_train), prepare(x_val, y_val), prepare(x_test, y_test)


def build(net, width_in, seed):
    layers_count, units = (int(v) for v in net.split("x"))
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((width_in,))])
    for index in range(layers_count):
        model.add(keras.layers.Dense(units, activation="sigmoid", name=f"hidden{index + 1}"))
        if FLAGS.dropout:
            model.add(keras.layers.Dropout(FLAGS.dropout, name=f"dropout{index + 1}"))
    model.add(keras.layers.Dense(10, activation="sigmoid", name="out"))
    model.compile(keras.optimizers.Adam(FLAGS.learning_rate), "mse")
    return model


def accuracy(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, verbose=0), 1) == np.argmax(y, 1)))


def accuracy_hold(steps, key, start):
    """Units removed before the accuracy first falls more than 1 point."""
    held = 0
    for step in steps[1:]:
        if step[key] < start - ACCURACY_LOSS - 1e-12:
            break
        held = step["units_removed"] - steps[0]["units_removed"]
    return held


def summarize_run(history):
    steps = history["steps"]
    return {
        "units_within_1pt_test": accuracy_hold(steps, "eval_accuracy", steps[0]["eval_accuracy"]),
        "units_within_1pt_val": accuracy_hold(steps, "accuracy", steps[0]["accuracy"]),
        "mean_test_loss": float(np.mean([s["eval_loss"] for s in steps])),
        "mean_val_loss": float(np.mean([s["loss"] for s in steps])),
        "mean_test_accuracy": float(np.mean([s["eval_accuracy"] for s in steps])),
        "ranking_seconds": float(sum(s["seconds"] for s in steps)),
    }


def time_brute_force(model, x_val, y_val):
    probed = ProbedModel(model)
    timings = {}
    for batched in (True, False):
        brute_force_effects(probed, x_val[:64], y_val[:64], batched=batched)  # trace
        times = []
        for _ in range(FLAGS.speed_repeats):
            began = time.perf_counter()
            result = brute_force_effects(probed, x_val, y_val, batched=batched)
            times.append(time.perf_counter() - began)
        timings["batched" if batched else "loop"] = {"seconds": times, "result": result}
    gap = max(
        float(np.nanmax(np.abs(timings["batched"]["result"][k]["loss"]
                               - timings["loop"]["result"][k]["loss"])))
        for k in probed.keys
    )
    batched, loop = min(timings["batched"]["seconds"]), min(timings["loop"]["seconds"])
    return {"batched_seconds": batched, "loop_seconds": loop, "speedup": loop / batched,
            "max_abs_difference": gap, "units": int(sum(g.size for g in probed.groups)),
            "examples": int(len(x_val)), "repeats": FLAGS.speed_repeats}


def train(dataset, net, data, seed):
    """The trained network and the part of the result that describes it."""
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data
    began = time.time()
    model = build(net, x_train.shape[1], seed)
    epochs = FLAGS.digits_epochs if dataset == "digits" else FLAGS.fmnist_epochs
    model.fit(x_train, y_train, epochs=epochs, batch_size=FLAGS.batch_size, verbose=0)
    train_seconds = time.time() - began
    result = {
        "dataset": dataset, "net": net, "seed": seed, "train_examples": int(len(x_train)),
        "val_examples": int(len(x_val)), "test_examples": int(len(x_test)),
        "epochs": epochs, "train_seconds": train_seconds,
        "test_accuracy": accuracy(model, x_test, y_test),
        "val_accuracy": accuracy(model, x_val, y_val),
        "runs": {},
    }
    print(f"{dataset} {net} seed {seed}: trained in {train_seconds:.0f} s, test accuracy "
          f"{result['test_accuracy']:.4f}", flush=True)
    return model, result


def overshoot(model, history, x, count=10, draws=200):
    """Why Single Overall Ranking collapses early (1-layer nets).

    Zeroing unit k shifts the output pre-activations by about mean(h_k) * W_k
    (W_k: its outgoing weights). Returns, for the first `count` units the
    ranking removed, how many had a negative score (removing each alone
    lowered the loss) and the alignment |sum of shifts| / sum of |shifts|
    (1: all push the outputs the same way, so their effects add up), against
    the mean alignment of random sets of as many units.
    """
    steps = history["steps"][1:count + 1]
    layer = steps[0]["layer"]
    units = np.array([step["unit"] for step in steps])
    hidden = keras.Model(model.inputs, model.get_layer(layer).output).predict(x, verbose=0)
    shifts = hidden.mean(0)[:, None] * model.get_layer("out").get_weights()[0]

    def alignment(index):
        return float(np.linalg.norm(shifts[index].sum(0)) / np.linalg.norm(shifts[index], axis=1).sum())

    rng = np.random.default_rng(0)
    width = shifts.shape[0]
    return {
        "units": int(len(units)),
        "negative_scores": int(sum(step["score"] < 0 for step in steps)),
        "alignment": alignment(units),
        "random_alignment": float(np.mean(
            [alignment(rng.permutation(width)[:len(units)]) for _ in range(draws)]
        )),
    }


def run_config(dataset, net, data, prefix):
    model, result = train(dataset, net, data, FLAGS.seed)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data
    result["brute_force_speed"] = time_brute_force(model, x_val, y_val)
    print(f"  brute force speed: {result['brute_force_speed']}", flush=True)
    alphas = np.linspace(0.0, 10.0, FLAGS.num_alphas)
    plan = [(a, c) for a in FLAGS.algorithms for c in FLAGS.criteria]
    if FLAGS.random_baseline:
        plan.append(("single", "random"))
    for algorithm, criterion in plan:
        began = time.time()
        surface = FLAGS.surface_every if algorithm == "iterative" else None
        history = darn.resize(
            model, criterion, validation_data=(x_val, y_val), algorithm=algorithm,
            eval_data=(x_test, y_test), error_surface_every=surface, alphas=alphas,
        ).history
        summary = summarize_run(history)
        summary["seconds"] = time.time() - began
        result["runs"][f"{algorithm}/{criterion}"] = {"summary": summary, "history": history}
        print(f"  {algorithm:9s} {criterion:11s} {summary}", flush=True)
        if surface:
            plots.plot_error_surfaces(
                history, f"{prefix}_{dataset}_{net}_surface_{criterion}.png",
                title=f"{dataset}, {net}: error surfaces of units removed by "
                      f"{criterion} (iterative)",
            )
    single = result["runs"].get("single/brute_force")
    if single and net.startswith("1x"):
        result["single_overshoot"] = overshoot(model, single["history"], x_val)
        print(f"  single ranking overshoot: {result['single_overshoot']}", flush=True)
    for algorithm in FLAGS.algorithms:
        runs = {k.split("/")[1]: v["history"] for k, v in result["runs"].items()
                if k.startswith(algorithm + "/") or (k == "single/random")}
        plots.plot_pruning_curves(
            runs, f"{prefix}_{dataset}_{net}_{algorithm}.png", use_eval=True,
            title=f"{dataset}, {net} sigmoid, {algorithm} ranking (test split)",
        )
    return result


def seed_sweep(dataset, net, result):
    """Iterative brute force on more seeds (1-layer nets): the 50 % target's spread."""
    rows = [{"seed": FLAGS.seed, "test_accuracy": result["test_accuracy"],
             **_held(result["runs"]["iterative/brute_force"]["summary"])}]
    for seed in (int(s) for s in FLAGS.extra_seeds):
        data = load(dataset, seed)
        model, extra = train(dataset, net, data, seed)
        _, (x_val, y_val), test = data
        history = darn.resize(model, "brute_force", validation_data=(x_val, y_val),
                              eval_data=test).history
        rows.append({"seed": seed, "test_accuracy": extra["test_accuracy"],
                     **_held(summarize_run(history))})
        print(f"  seed {seed}: {rows[-1]}", flush=True)
    return rows


def _held(summary):
    return {key: summary[key] for key in ("units_within_1pt_test", "units_within_1pt_val")}


def targets(results):
    checks, curves = {}, []
    for result in results:
        name = f"{result['dataset']}/{result['net']}"
        runs = result["runs"]
        for algorithm in FLAGS.algorithms:
            first = runs.get(f"{algorithm}/taylor1")
            second = runs.get(f"{algorithm}/taylor2")
            if first and second:
                l1 = [s["eval_loss"] for s in first["history"]["steps"]]
                l2 = [s["eval_loss"] for s in second["history"]["steps"]]
                curve = {
                    "taylor1": float(np.mean(l1)), "taylor2": float(np.mean(l2)),
                    "share_of_steps_taylor2_lower_or_equal": float(
                        np.mean(np.array(l2) <= np.array(l1))
                    ),
                    "met": bool(np.mean(l2) < np.mean(l1)),
                }
                checks[f"{name}/{algorithm}: mean test loss taylor2 < taylor1"] = curve
                curves.append((algorithm, curve))
        if result.get("seed_sweep"):
            units = int(result["net"].split("x")[1])
            held = [row["units_within_1pt_test"] for row in result["seed_sweep"]]
            checks[f"{name}: iterative brute force removes >= 50% within 1 point "
                   f"(mean over {len(held)} seeds)"] = {
                "units_removed_per_seed": "/".join(str(h) for h in held),
                "mean_fraction": float(np.mean(held)) / units,
                "met": float(np.mean(held)) >= 0.5 * units,
            }
        speed = result["brute_force_speed"]
        checks[f"{name}: batched brute force >= 5x faster"] = {
            "speedup": speed["speedup"], "met": speed["speedup"] >= 5.0,
        }
    checks.update(_average_over_curves(curves))
    return checks


def _average_over_curves(curves):
    """The taylor2-vs-taylor1 target over every curve of the run, and per algorithm.

    Args:
        curves: `(algorithm, check)` pairs, one per taylor2-vs-taylor1 curve.
    """
    averages = {}
    for algorithm in [None] + list(dict.fromkeys(a for a, _ in curves)):
        chosen = [c for a, c in curves if algorithm is None or a == algorithm]
        if len(chosen) < 2:
            continue
        first = float(np.mean([c["taylor1"] for c in chosen]))
        second = float(np.mean([c["taylor2"] for c in chosen]))
        label = "all" if algorithm is None else algorithm
        averages[f"{label} curves ({len(chosen)}): mean test loss taylor2 < taylor1, "
                 "averaged over the curves"] = {
            "taylor1": first, "taylor2": second,
            "curves_taylor2_lower": f"{sum(c['met'] for c in chosen)}/{len(chosen)}",
            "met": second < first,
        }
    return averages


def write_markdown(path, config, results, checks, seconds):
    lines = [
        "# Incredible Shrinking Network: pruning without retraining",
        "",
        f"Generated by `benchmarks/shrinking.py` in {seconds / 60:.1f} min on "
        f"{config['machine']}. Networks of sigmoid units with 10 sigmoid outputs, "
        "squared-error loss (Keras `mse`), Adam"
        + (f", trained with dropout {config['dropout']} after every hidden layer (not in the "
           "paper)" if config.get("dropout") else "")
        + "; units ranked on a validation split and removed one at a time down to one unit "
        "per layer, no retraining. Test-split numbers below.",
        "",
        "Data used: " + "; ".join(
            f"{r['dataset']} {r['net']}: {r['train_examples']} train / {r['val_examples']} "
            f"val / {r['test_examples']} test, {r['epochs']} epochs"
            for r in results
        ) + ".",
        "",
        "## Goals checked",
        "",
    ]
    lines += harness.markdown_table(["check", "value", "met"], [
        [name,
         ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                   for k, v in check.items() if k != "met"),
         "yes" if check["met"] else "NO"]
        for name, check in checks.items()
    ])
    lines += ["", "## Runs", "",
              "`within 1pt`: units removed before the test accuracy first drops more than "
              "1 point below the unpruned network's. `mean loss`: test loss averaged over "
              "the whole curve (lower is better).", ""]
    rows = []
    for result in results:
        for key, run in result["runs"].items():
            algorithm, criterion = key.split("/")
            s = run["summary"]
            rows.append([
                result["dataset"], result["net"], f"{result['test_accuracy']:.4f}", algorithm,
                criterion, s["units_within_1pt_test"], s["units_within_1pt_val"],
                f"{s['mean_test_loss']:.4f}", f"{s['mean_test_accuracy']:.4f}",
                f"{s['seconds']:.1f}",
            ])
    lines += harness.markdown_table(
        ["dataset", "net", "test acc", "algorithm", "criterion", "within 1pt (test)",
         "within 1pt (val)", "mean test loss", "mean test acc", "seconds"],
        rows,
    )
    sweeps = [r for r in results if r.get("seed_sweep")]
    if sweeps:
        lines += ["", "## Iterative brute force over seeds (1-layer nets)", "",
                  "Each seed draws its own data split (Fashion-MNIST subsets) and initial "
                  "weights; units removed within 1 point of test / validation accuracy.", ""]
        lines += harness.markdown_table(
            ["dataset", "net", "seed", "test acc", "within 1pt (test)", "within 1pt (val)"],
            [[r["dataset"], r["net"], row["seed"], f"{row['test_accuracy']:.4f}",
              row["units_within_1pt_test"], row["units_within_1pt_val"]]
             for r in sweeps for row in r["seed_sweep"]],
        )
    overshoots = [r for r in results if r.get("single_overshoot")]
    if overshoots:
        lines += ["", "## Why Single Overall Ranking collapses early", "",
                  "Brute force ranks first the units whose removal alone lowers the loss "
                  "(negative scores). Zeroing unit k shifts the output pre-activations by "
                  "about mean(h_k) x W_k; alignment = |sum of the shifts| / sum of their norms "
                  "for the first units the single ranking removes (1: all push the outputs the "
                  "same way, so their effects add up instead of cancelling), against random "
                  "sets of as many units. Re-ranking after every removal sees the accumulated "
                  "shift; a single ranking does not.", ""]
        rows = []
        for r in overshoots:
            o = r["single_overshoot"]
            rows.append([r["dataset"], r["net"], o["units"], o["negative_scores"],
                         f"{o['alignment']:.2f}", f"{o['random_alignment']:.2f}"])
        lines += harness.markdown_table(
            ["dataset", "net", "first units", "negative scores", "alignment", "random sets"], rows
        )
    lines += ["", "## Brute force: batched vs one unit per pass", ""]
    rows = []
    for result in results:
        s = result["brute_force_speed"]
        rows.append([result["dataset"], result["net"], s["units"], s["examples"],
                     f"{s['loop_seconds']:.3f}", f"{s['batched_seconds']:.3f}",
                     f"{s['speedup']:.1f}x", f"{s['max_abs_difference']:.2g}"])
    lines += harness.markdown_table(
        ["dataset", "net", "units", "val examples", "loop s", "batched s", "speedup",
         "max abs difference"],
        rows,
    )
    lines += ["", "Timings: best of "
              f"{config['speed_repeats']} after a warm-up call; both paths use the same "
              "compiled forward pass, the loop runs it once per unit.", ""]
    harness.write_markdown(path, lines)


def main(argv):
    del argv
    harness.apply_quick({"nets": ["1x100"], "datasets": ["digits"], "criteria": ["taylor1"],
                         "digits_epochs": 5, "extra_seeds": [], "speed_repeats": 1,
                         "num_alphas": 5, "surface_every": 50})
    prefix = harness.result_prefix()
    if FLAGS.report_only:
        saved = harness.read_json(prefix + ".json")
        write_markdown(prefix + ".md", saved["config"], saved["results"],
                       targets(saved["results"]), saved["seconds"])
        with open(prefix + ".md") as f:
            print(f.read())
        return
    start = time.time()
    config = {
        key: FLAGS[key].value
        for key in ("datasets", "nets", "criteria", "algorithms", "random_baseline",
                    "val_fraction", "fmnist_train", "fmnist_val", "fmnist_test",
                    "digits_epochs", "fmnist_epochs", "learning_rate", "batch_size",
                    "dropout", "surface_every", "num_alphas", "speed_repeats", "seed", "extra_seeds")
    }
    config["machine"] = harness.describe_machine()
    results = []
    for dataset in FLAGS.datasets:
        data = load(dataset, FLAGS.seed)
        for net in FLAGS.nets:
            results.append(run_config(dataset, net, data, prefix))
            if net.startswith("1x") and "iterative/brute_force" in results[-1]["runs"]:
                results[-1]["seed_sweep"] = seed_sweep(dataset, net, results[-1])
            checks = targets(results)
            harness.write_json(prefix + ".json", {"config": config, "targets": checks,
                                                  "results": results, "seconds": time.time() - start})
            print(f"elapsed {(time.time() - start) / 60:.1f} min", flush=True)
    write_markdown(prefix + ".md", config, results, targets(results), time.time() - start)
    with open(prefix + ".md") as f:
        print(f.read())


if __name__ == "__main__":
    app.run(main)
