"""Benchmark: DARN's Algorithm 1 (Dynamic Neuron Removal) on Fashion-MNIST.

The paper's CNN (Section 7.3): four convolutional layers, each followed by
batch normalization and ReLU (max pooling after the first three), and one
linear layer before the output (here the softmax output layer itself, read
through `Flatten`). It is pretrained for `pretrain_epochs` (the paper: 3),
then pruned by Algorithm 1 on its first three convolutions (as the paper),
with

- `l1`: the mean absolute activation of each filter (relative to the
  layer's largest) below a threshold t, t on a log scale;
- `correlation`: one filter of every pair whose activations correlate at
  least t, t = 0.98 down on a log scale of 1 - t;
- `correlation+fold`: the same, folding each removed filter's outgoing
  weights into its partner's (least-squares scale and offset).

Every threshold is followed by up to `max_retrains` epochs of retraining;
the model is accepted while its validation accuracy stays >= initial -
sacrifice. Reported per step: validation accuracy, parameters, FLOPs and
inference wall-clock on a batch; at the end, test accuracy of the initial
and final models. A one-shot comparison measures, for the same correlated
pairs, the accuracy right after removal with and without folding.

Goal: >= 25 % fewer parameters and >= 30 % fewer FLOPs with at most 1.5
points accuracy loss.

Writes `<output_dir>/<name>.json`, `<name>.md` and `<name>_<arm>.png`
(`--name`, default `darn_prune`; `--output_dir`, default `benchmarks/results`).

    python benchmarks/darn_prune.py    # the defaults fit ~20 min on 2 shared CPU cores
    python benchmarks/darn_prune.py --quick
"""

import time

import harness  # noqa: F401  (benchmarks/harness/; first: quiets TensorFlow)

import keras  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from keras_darn import plots  # noqa: E402
from keras_darn.methods.darn import accuracy  # noqa: E402
from keras_darn.methods.darn import prune_by_threshold  # noqa: E402
from keras_darn.metrics import count_flops  # noqa: E402
from keras_darn.metrics import count_params  # noqa: E402
from keras_darn.metrics import measure_latency  # noqa: E402
from keras_darn.resizing import Target  # noqa: E402
from keras_darn.resizing import resize  # noqa: E402
from keras_darn.resizing import schedules  # noqa: E402

FLAGS = flags.FLAGS
harness.define_data_flag()
flags.DEFINE_integer("num_train", 10000, "Training examples (stratified subset).")
flags.DEFINE_integer("num_val", 2000, "Validation examples, held out of the training split.")
flags.DEFINE_integer("num_test", 2000, "Test examples (stratified subset).")
flags.DEFINE_list("filters", ["32", "64", "64", "64"], "Filters of the four convolutions.")
flags.DEFINE_integer("prune_layers", 3, "Prune the first N convolutions (the paper: 3).")
flags.DEFINE_integer("pretrain_epochs", 4, "Pretraining epochs (the paper: 3).")
flags.DEFINE_integer("max_retrains", 2, "Retraining epochs per threshold, n_rt_max.")
flags.DEFINE_float("sacrifice", 0.015, "Accuracy that may be lost (fraction).")
flags.DEFINE_list("arms", ["l1", "correlation", "correlation+fold"], "Arms.")
flags.DEFINE_float("l1_first", 0.05, "First relative-L1 threshold.")
flags.DEFINE_float("l1_last", 0.6, "Last relative-L1 threshold.")
flags.DEFINE_integer("l1_num", 12, "Number of L1 thresholds.")
flags.DEFINE_float("corr_first", 0.98, "First correlation threshold.")
flags.DEFINE_float("corr_last", 0.5, "Last correlation threshold.")
flags.DEFINE_integer("corr_num", 12, "Number of correlation thresholds.")
flags.DEFINE_integer("score_examples", 2048, "Training examples the statistics use.")
flags.DEFINE_integer("latency_batch", 512, "Batch timed for inference wall-clock.")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
harness.define_seed_flag()
harness.define_output_flags("darn_prune")
harness.define_quick_flag()
flags.DEFINE_bool("markdown_only", False, "Rewrite the markdown from an existing JSON.")


def build_cnn(filters, seed):
    """Four conv-BN-ReLU blocks (pooling after the first three) and one linear layer."""
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    model = keras.Sequential([keras.Input((28, 28, 1))], name="darn_cnn")
    for index, width in enumerate(filters, 1):
        model.add(layers.Conv2D(width, 3, padding="same", name=f"conv{index}"))
        model.add(layers.BatchNormalization(name=f"bn{index}"))
        model.add(layers.ReLU(name=f"relu{index}"))
        if index < len(filters):
            model.add(layers.MaxPooling2D(2, name=f"pool{index}"))
    model.add(layers.Flatten(name="flatten"))
    model.add(layers.Dense(10, activation="softmax", name="linear"))
    model.compile(
        keras.optimizers.Adam(FLAGS.learning_rate), "sparse_categorical_crossentropy"
    )
    return model


def load():
    splits = harness.load_fashion_split(FLAGS.num_train, FLAGS.num_val, FLAGS.num_test,
                                        seed=FLAGS.seed, data_dir=FLAGS.data_dir)
    return tuple((x, y.astype("int64")) for x, y in splits)


def copy_model(model):
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    clone.compile(keras.optimizers.Adam(FLAGS.learning_rate), "sparse_categorical_crossentropy")
    return clone


def fold_comparison(model, x_score, val, prune):
    """Same pairs removed with and without folding; accuracy before retraining."""
    rows = []
    for threshold in (0.95, 0.9, 0.8, 0.7):
        plain, removed = prune_by_threshold(model, "correlation", threshold, x_score,
                                            layers=prune, fold=False)
        folded, removed_fold = prune_by_threshold(model, "correlation", threshold, x_score,
                                                  layers=prune, fold=True)
        assert removed == removed_fold
        rows.append({
            "threshold": threshold,
            "units_removed": {k: len(v) for k, v in removed.items()},
            "plain_accuracy": accuracy(plain, *val) if removed else accuracy(model, *val),
            "fold_accuracy": accuracy(folded, *val) if removed else accuracy(model, *val),
        })
        print(f"  fold comparison {rows[-1]}", flush=True)
    return rows


def main(argv):
    del argv
    harness.apply_quick({"num_train": 600, "num_val": 200, "num_test": 200,
                         "filters": ["8", "8", "8", "8"], "pretrain_epochs": 1, "max_retrains": 1,
                         "l1_num": 3, "corr_num": 3, "score_examples": 256, "latency_batch": 64})
    prefix = harness.result_prefix()
    if FLAGS.markdown_only:
        write_markdown(prefix + ".md", harness.read_json(prefix + ".json"))
        return
    start = time.time()
    train, val, test = load()
    filters = [int(f) for f in FLAGS.filters]
    prune = [f"conv{i}" for i in range(1, FLAGS.prune_layers + 1)]
    config = {key: FLAGS[key].value for key in (
        "num_train", "num_val", "num_test", "filters", "prune_layers", "pretrain_epochs",
        "max_retrains", "sacrifice", "arms", "l1_first", "l1_last", "l1_num", "corr_first",
        "corr_last", "corr_num", "score_examples", "latency_batch", "batch_size",
        "learning_rate", "seed")}
    config["machine"] = harness.describe_machine()
    pretrained = build_cnn(filters, FLAGS.seed)
    began = time.time()
    pretrained.fit(*train, epochs=FLAGS.pretrain_epochs, batch_size=FLAGS.batch_size,
                   verbose=0)
    pretrain_seconds = time.time() - began
    x_score = train[0][: FLAGS.score_examples]
    latency_data = test[0][: FLAGS.latency_batch]
    initial = {
        "val_accuracy": accuracy(pretrained, *val),
        "test_accuracy": accuracy(pretrained, *test),
        "params": count_params(pretrained),
        "flops": count_flops(pretrained),
        "inference_seconds": measure_latency(pretrained, latency_data, repeats=10)["median"],
        "pretrain_seconds": pretrain_seconds,
    }
    print(f"pretrained: {initial}", flush=True)
    result = {"config": config, "initial": initial, "arms": {}}
    result["fold_comparison"] = fold_comparison(pretrained, x_score, val, prune)
    for arm in FLAGS.arms:
        began = time.time()
        criterion = "l1" if arm == "l1" else "correlation"
        thresholds = (
            schedules.LogSpaced(FLAGS.l1_first, FLAGS.l1_last, FLAGS.l1_num) if arm == "l1"
            else schedules.LogSpaced(FLAGS.corr_first, FLAGS.corr_last, FLAGS.corr_num,
                                     distance_to_one=True)
        )
        model = copy_model(pretrained)  # a fresh Adam for every arm
        run = resize(
            model, "darn", Target(max_accuracy_drop=FLAGS.sacrifice), x=train[0], y=train[1],
            validation_data=val, epochs=1, schedule=thresholds, verbose=1, criterion=criterion,
            max_retrains=FLAGS.max_retrains, batch_size=FLAGS.batch_size, layers=prune,
            fold=arm.endswith("+fold"), score_examples=FLAGS.score_examples,
            latency_batch=FLAGS.latency_batch,
        )
        final, history = run.model, run.history
        summary = {
            "thresholds": thresholds.values(),
            "stopped_at": history["stopped_at"],
            "val_accuracy": accuracy(final, *val),
            "test_accuracy": accuracy(final, *test),
            "params": count_params(final),
            "flops": count_flops(final),
            "widths": {n: int(final.get_layer(n).filters) for n in prune},
            "inference_seconds": measure_latency(final, latency_data, repeats=10)["median"],
            "training_iterations": len(history["steps"]) - 1,
            "seconds": time.time() - began,
        }
        summary["param_reduction"] = 1 - summary["params"] / initial["params"]
        summary["flop_reduction"] = 1 - summary["flops"] / initial["flops"]
        summary["test_accuracy_loss"] = initial["test_accuracy"] - summary["test_accuracy"]
        summary["val_accuracy_loss"] = initial["val_accuracy"] - summary["val_accuracy"]
        summary["target_met"] = bool(
            summary["param_reduction"] >= 0.25 and summary["flop_reduction"] >= 0.30
            and summary["test_accuracy_loss"] <= 0.015
        )
        result["arms"][arm] = {"summary": summary, "history": history}
        print(f"{arm}: {summary}", flush=True)
        plots.plot_darn_history(
            history, f"{prefix}_{arm.replace('+', '_')}.png",
            title=f"DARN Algorithm 1, {arm}, Fashion-MNIST CNN (val accuracy)",
        )
        result["seconds"] = time.time() - start
        harness.write_json(prefix + ".json", result)
    write_markdown(prefix + ".md", result)
    print("\n".join(markdown(result)))


def write_markdown(path, result):
    harness.write_markdown(path, markdown(result))


def markdown(result):
    config, initial = result["config"], result["initial"]
    lines = [
        "# DARN Algorithm 1 on Fashion-MNIST",
        "",
        f"Generated by `benchmarks/darn_prune.py` in {result['seconds'] / 60:.1f} min on "
        f"{config['machine']}. Data: {config['num_train']} training, {config['num_val']} "
        f"validation (acceptance) and {config['num_test']} test examples (stratified "
        f"subsets, seed {config['seed']}). CNN: conv {config['filters']} (3x3, BN, ReLU, "
        "max pooling after the first three) + one linear softmax layer; pretrained "
        f"{config['pretrain_epochs']} epochs (Adam {config['learning_rate']}); the first "
        f"{config['prune_layers']} convolutions pruned; sacrifice "
        f"{config['sacrifice']}, up to {config['max_retrains']} retraining epochs per "
        "threshold.",
        "",
        f"Unpruned: val accuracy {initial['val_accuracy']:.4f}, test accuracy "
        f"{initial['test_accuracy']:.4f}, {initial['params']} parameters, "
        f"{initial['flops']} FLOPs, {initial['inference_seconds'] * 1e3:.1f} ms per batch of "
        f"{config['latency_batch']}.",
        "",
    ]
    arms = []
    for arm, run in result["arms"].items():
        s = run["summary"]
        stop = "all thresholds" if s["stopped_at"] is None else f"{s['stopped_at']:.3g}"
        arms.append([
            arm, stop, s["widths"], f"{s['test_accuracy']:.4f}",
            f"{100 * s['test_accuracy_loss']:.2f}", s["params"],
            f"{100 * s['param_reduction']:.1f}", f"{100 * s['flop_reduction']:.1f}",
            f"{s['inference_seconds'] * 1e3:.1f}", s["training_iterations"],
            "yes" if s["target_met"] else "NO",
        ])
    lines += harness.markdown_table(
        ["arm", "stopped at", "widths", "test acc", "test loss (pts)", "params", "params -%",
         "FLOPs -%", "ms/batch", "iterations", "goal met"],
        arms,
    )
    lines += ["", "Goal: >= 25 % fewer parameters and >= 30 % fewer FLOPs with <= 1.5 "
              "points test accuracy loss.", "",
              "## Folding into the correlated partner vs plain removal", "",
              "Same pretrained model, same pairs removed; validation accuracy right after "
              "removal, before any retraining.", ""]
    lines += harness.markdown_table(
        ["threshold", "units removed", "plain removal", "folded"],
        [
            [row["threshold"], row["units_removed"], f"{row['plain_accuracy']:.4f}",
             f"{row['fold_accuracy']:.4f}"]
            for row in result["fold_comparison"]
        ],
    )
    lines += ["", "## Steps", ""]
    for arm, run in result["arms"].items():
        thresholds = ", ".join(f"{t:.3g}" for t in run["summary"]["thresholds"])
        lines += [f"### {arm}", "", f"Thresholds: {thresholds}.", ""]
        steps = []
        for s in run["history"]["steps"]:
            ms = "" if s["inference_seconds"] is None else f"{s['inference_seconds'] * 1e3:.1f}"
            steps.append([
                s["iteration"], f"{s['threshold']:.3g}", s["retrain"], s["units_pruned"],
                f"{s['pruned_accuracy']:.4f}", f"{s['accuracy']:.4f}", s["accepted"], s["params"],
                s["flops"], ms,
            ])
        lines += harness.markdown_table(
            ["iteration", "threshold", "retrain", "units pruned", "acc. after pruning", "val acc",
             "accepted", "params", "FLOPs", "ms/batch"],
            steps,
        )
        lines.append("")
    return lines


if __name__ == "__main__":
    app.run(main)
