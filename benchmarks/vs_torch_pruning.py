"""keras_darn's structured pruning against Torch-Pruning, side by side on Fashion-MNIST.

Same data (Fashion-MNIST, 60,000 / 10,000 unless `--num_train` says less),
same architectures (`build_keras` here, their PyTorch twins in
`peers/torch_pruning_peer.py`, equal parameter counts), same epochs in all,
Adam at the same rate, same batch size. Both tools follow one recipe: train
`--pretrain_epochs` epochs, then `--steps` pruning steps each followed by one
epoch of fine-tuning, to `base_params / ratio` parameters or fewer; the
unpruned baseline is the same network trained all the epochs. keras_darn
runs through the front door, `darn.resize(model, method, darn.Target(params=...),
x=, y=, epochs=, schedule=)`, rebuilding the model smaller after every step
with the optimizer state carried; Torch-Pruning runs in its own virtual
environment and process (`peers/setup_torch_pruning.sh`).

Examples:

    python benchmarks/vs_torch_pruning.py --networks=plain --ratios=4,16 --seeds=0 \\
        --methods=magnitude
    python benchmarks/vs_torch_pruning.py --quick        # a smoke run, under results/runs/

Writes `<output_dir>/vs_torch_pruning.{json,md}` and `_<network>.png` (accuracy
against parameters, one line per tool and method).
"""

import os
import statistics
import subprocess
import sys
import time

import harness  # noqa: I001  (before TensorFlow: it quiets TensorFlow's log lines)
import keras
import numpy as np
from absl import app
from absl import flags

import keras_darn as darn

FLAGS = flags.FLAGS
harness.define_output_flags("vs_torch_pruning")
harness.define_data_flag()
harness.define_seeds_flag([0, 1, 2])
harness.define_epochs_flag(8)
harness.define_quick_flag()
flags.DEFINE_list("networks", ["plain", "residual", "separable"], "Architectures.")
flags.DEFINE_list("ratios", ["2", "4", "8", "16"], "Parameter reduction factors.")
flags.DEFINE_list("methods", ["magnitude", "magnitude_l1", "bn_scale", "taylor1",
                              "activation_variance", "weight_l1", "random"],
                  "keras_darn pruning methods (registered names; a '_uniform' suffix runs it "
                  "with global_pruning=False).")
flags.DEFINE_bool("uniform", False, "Also run keras_darn with global_pruning=False.")
flags.DEFINE_integer("pretrain_epochs", 3, "Epochs before the first pruning step.")
flags.DEFINE_integer("steps", 5, "Pruning steps, each followed by one epoch.")
flags.DEFINE_integer("batch_size", 256, "Batch size.")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
flags.DEFINE_integer("num_train", 60000, "Training examples (a stratified subset when fewer).")
flags.DEFINE_integer("num_test", 10000, "Test examples.")
flags.DEFINE_integer("num_score", 2000, "Training examples data criteria score units on.")
flags.DEFINE_string("peer_python", "",
                    "Python of the Torch-Pruning environment (made by "
                    "benchmarks/peers/setup_torch_pruning.sh); empty: skip the peer.")
flags.DEFINE_list("peer_results", [], "JSON files of earlier peer runs to use instead of running it.")
flags.DEFINE_list("keras_results", [],
                  "JSON files of earlier keras_darn runs (runs/vs_torch_pruning/keras_*.json) to add.")
flags.DEFINE_bool("reuse_pretrained", False,
                  "Start the pruned keras_darn runs from the network an earlier run saved after "
                  "--pretrain_epochs (runs/vs_torch_pruning/<network>_s<seed>.keras), without its "
                  "unpruned baseline.")
flags.DEFINE_bool("skip_keras", False, "Only merge earlier results (with --keras_results).")
flags.DEFINE_bool("peer_global", False, "Torch-Pruning with global_pruning=True.")

L = keras.layers


def build_keras(network):
    """The three networks: plain CNN, residual CNN with BatchNorm, depthwise-separable CNN."""
    inputs = keras.Input((28, 28, 1))
    if network == "plain":
        x = L.Conv2D(32, 3, padding="same", activation="relu")(inputs)
        x = L.Conv2D(32, 3, padding="same", activation="relu")(x)
        x = L.MaxPooling2D()(x)
        x = L.Conv2D(64, 3, padding="same", activation="relu")(x)
        x = L.Conv2D(64, 3, padding="same", activation="relu")(x)
        x = L.Flatten()(L.MaxPooling2D()(x))
    elif network == "residual":
        def conv_bn(x, width):
            return L.ReLU()(L.BatchNormalization()(L.Conv2D(width, 3, padding="same")(x)))

        def block(x, width):
            y = conv_bn(x, width)
            y = L.BatchNormalization()(L.Conv2D(width, 3, padding="same")(y))
            return L.ReLU()(L.Add()([x, y]))

        x = L.MaxPooling2D()(block(conv_bn(inputs, 32), 32))
        x = L.MaxPooling2D()(block(conv_bn(x, 64), 64))
        x = L.GlobalAveragePooling2D()(x)
    else:
        def separable(x, width):
            x = L.DepthwiseConv2D(3, padding="same")(x)
            return L.Conv2D(width, 1, activation="relu")(x)

        x = L.Conv2D(32, 3, padding="same", activation="relu")(inputs)
        x = L.MaxPooling2D()(separable(x, 64))
        x = L.MaxPooling2D()(separable(separable(x, 128), 128))
        x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(128, activation="relu")(x)
    return keras.Model(inputs, L.Dense(10, activation="softmax")(x), name=network)


def compiled(model):
    model.compile(keras.optimizers.Adam(FLAGS.learning_rate), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def accuracy(model, x, y):
    return float(np.mean(model.predict(x, batch_size=1000, verbose=0).argmax(-1) == y))


def run_keras(network, seed, data, snapshot_dir):
    (x, y), (x_test, y_test) = data
    keras.utils.set_random_seed(seed)
    model = compiled(build_keras(network))
    base_params, base_flops = darn.count_params(model), darn.count_flops(model)
    snapshot = os.path.join(snapshot_dir, f"{network}_s{seed}.keras")
    rows = []
    pretrain_seconds = None
    if not FLAGS.reuse_pretrained:
        began = time.time()
        model.fit(x, y, epochs=FLAGS.pretrain_epochs, batch_size=FLAGS.batch_size, verbose=0)
        pretrain_seconds = time.time() - began
        model.save(snapshot)
        model.fit(x, y, initial_epoch=FLAGS.pretrain_epochs, epochs=FLAGS.epochs,
                  batch_size=FLAGS.batch_size, verbose=0)
        rows.append({"tool": "keras_darn", "method": "unpruned", "network": network,
                     "seed": seed, "ratio": 1, "params": base_params, "flops": base_flops,
                     "accuracy": accuracy(model, x_test, y_test),
                     "seconds": time.time() - began})
        print(rows[-1], flush=True)
    # Absolute epochs: the snapshot has trained epochs 0 .. pretrain - 1; the
    # first step is at the end of epoch pretrain - 1, each later one after an
    # epoch of fine-tuning, and the last step is fine-tuned too.
    schedule = darn.schedules.Linear(start=FLAGS.pretrain_epochs - 1,
                                     end=FLAGS.pretrain_epochs + FLAGS.steps - 2)
    score = (x[-FLAGS.num_score:], y[-FLAGS.num_score:])
    variants = [(m[:-len("_uniform")], False) if m.endswith("_uniform") else (m, True)
                for m in FLAGS.methods]
    if FLAGS.uniform:
        variants += [(m, False) for m in FLAGS.methods]
    for method, global_pruning in variants:
        for ratio in (float(r) for r in FLAGS.ratios):
            keras.utils.set_random_seed(seed)
            start = keras.saving.load_model(snapshot)
            began = time.time()
            result = darn.resize(
                start, method, darn.Target(params=int(base_params // ratio)), x=x, y=y,
                validation_data=score, epochs=FLAGS.epochs, schedule=schedule,
                batch_size=FLAGS.batch_size, global_pruning=global_pruning,
                initial_epoch=FLAGS.pretrain_epochs)
            small = result.model
            rows.append({
                "tool": "keras_darn", "method": method + ("" if global_pruning else "_uniform"),
                "network": network, "seed": seed, "ratio": ratio,
                "params": darn.count_params(small), "flops": darn.count_flops(small),
                "accuracy": accuracy(small, x_test, y_test),
                "seconds": (pretrain_seconds or 0) + time.time() - began,
                "pretrain_seconds_included": pretrain_seconds is not None,
                "widths": [int(getattr(l, "filters", 0) or getattr(l, "units", 0))
                           for l in small.layers if hasattr(l, "kernel")
                           and not isinstance(l, L.DepthwiseConv2D)],
            })
            print(rows[-1], flush=True)
    return rows


def run_peer(network, seeds, data_path, out_dir):
    output = os.path.join(out_dir, f"peer_{network}.json")
    command = [FLAGS.peer_python, os.path.join(harness.BENCHMARKS_DIR, "peers",
                                               "torch_pruning_peer.py"),
               f"--data={data_path}", f"--output={output}", f"--network={network}",
               f"--ratios={','.join(FLAGS.ratios)}", f"--seeds={','.join(map(str, seeds))}",
               f"--epochs={FLAGS.epochs}", f"--pretrain_epochs={FLAGS.pretrain_epochs}",
               f"--steps={FLAGS.steps}", f"--batch_size={FLAGS.batch_size}",
               f"--learning_rate={FLAGS.learning_rate}",
               f"--global_pruning={FLAGS.peer_global}"]
    subprocess.run(command, check=True)
    return harness.read_json(output)["rows"]


def summarize(rows):
    """Mean and sd over seeds per (network, tool, method, ratio), drop from the tool's own baseline."""
    groups = {}
    for row in rows:
        groups.setdefault((row["network"], row["tool"], row["method"], row["ratio"]), []).append(row)
    baselines = {(n, t): statistics.mean(r["accuracy"] for r in g)
                 for (n, t, m, _), g in groups.items() if m == "unpruned"}
    summary = []
    for (network, tool, method, ratio), group in sorted(
            groups.items(), key=lambda item: (item[0][0], item[0][2] != "unpruned", item[0][1],
                                              item[0][2], item[0][3])):
        accuracies = [r["accuracy"] for r in group]
        mean = statistics.mean(accuracies)
        summary.append({
            "network": network, "tool": tool, "method": method, "ratio": ratio,
            "seeds": len(group), "params": statistics.mean(r["params"] for r in group),
            "flops": statistics.mean(r["flops"] for r in group),
            "accuracy_mean": mean,
            "accuracy_sd": statistics.stdev(accuracies) if len(group) > 1 else 0.0,
            "drop": mean - baselines.get((network, tool), mean),
            "seconds": statistics.mean(r["seconds"] for r in group),
        })
    return summary


def write(rows, meta):
    prefix = harness.result_prefix()
    summary = summarize(rows)
    harness.write_json(prefix + ".json", {"meta": meta, "summary": summary, "rows": rows})
    table = harness.markdown_table(
        ["network", "fewer params", "tool", "method", "params", "FLOPs", "accuracy % (sd)",
         "vs own unpruned", "seeds", "train s"],
        [[s["network"], f"{s['ratio']:g}x", s["tool"], s["method"], f"{s['params']:,.0f}",
          f"{s['flops'] / 1e6:.2f} M", f"{100 * s['accuracy_mean']:.2f} ({100 * s['accuracy_sd']:.2f})",
          f"{100 * s['drop']:+.2f}", s["seeds"], f"{s['seconds']:.0f}"] for s in summary])
    harness.write_markdown(prefix + ".md", [
        "# keras_darn vs Torch-Pruning 1.6.1, Fashion-MNIST", "",
        f"Recipe: {meta['recipe']}. Machine: {meta['machine']}.", "", *table])
    for network in sorted({s["network"] for s in summary}):
        fig, (ax,) = harness.figure()
        lines = {}
        for s in summary:
            if s["network"] == network and s["method"] != "unpruned":
                lines.setdefault(f"{s['tool']} {s['method']}", []).append(s)
        for label, points in sorted(lines.items()):
            points.sort(key=lambda s: s["params"])
            ax.errorbar([p["params"] for p in points], [100 * p["accuracy_mean"] for p in points],
                        yerr=[100 * p["accuracy_sd"] for p in points], marker="o", label=label,
                        capsize=3)
        for s in summary:
            if s["network"] == network and s["method"] == "unpruned":
                ax.axhline(100 * s["accuracy_mean"], linestyle=":", linewidth=1,
                           color="C0" if s["tool"] == "keras_darn" else "C1",
                           label=f"{s['tool']} unpruned")
        ax.set_xscale("log")
        harness.label_axes(ax, "parameters", "test accuracy (%)", f"{network} CNN, Fashion-MNIST")
        harness.save_figure(fig, f"{prefix}_{network}.png")
    print("\n".join(table))


def main(argv):
    del argv
    harness.apply_quick({"networks": ["plain"], "ratios": ["4"], "seeds": ["0"],
                         "methods": ["magnitude"], "epochs": 2, "pretrain_epochs": 1,
                         "steps": 1, "num_train": 1024, "num_test": 512, "num_score": 256})
    seeds = harness.seeds()
    data = harness.load_fashion(FLAGS.num_train, FLAGS.num_test, data_dir=FLAGS.data_dir)
    work = harness.runs_dir("vs_torch_pruning")
    rows = []
    for path in FLAGS.peer_results + FLAGS.keras_results:
        rows += harness.read_json(path)["rows"]
    data_path = os.path.join(work, "data.npz")
    if FLAGS.peer_python and not FLAGS.peer_results:
        (x, y), (x_test, y_test) = data
        np.savez(data_path, x_train=x, y_train=y.astype("int64"), x_test=x_test,
                 y_test=y_test.astype("int64"))
    for network in FLAGS.networks:
        if FLAGS.peer_python and not FLAGS.peer_results:
            rows += run_peer(network, seeds, data_path, work)
        for seed in seeds if not FLAGS.skip_keras else []:
            new = run_keras(network, seed, data, work)
            tag = "_".join(FLAGS.methods) if FLAGS.reuse_pretrained else "all"
            harness.write_json(os.path.join(work, f"keras_{network}_s{seed}_{tag}.json"),
                               {"rows": new})
            rows += new
    meta = {
        "recipe": (f"{FLAGS.epochs} epochs in all, Adam {FLAGS.learning_rate:g}, batch "
                   f"{FLAGS.batch_size}, {FLAGS.pretrain_epochs} epochs then {FLAGS.steps} "
                   f"pruning steps each followed by 1 epoch; {len(data[0][0]):,} training / "
                   f"{len(data[1][0]):,} test images; seeds {seeds}"),
        "machine": harness.describe_machine(),
        "command": " ".join(sys.argv),
    }
    write(rows, meta)


if __name__ == "__main__":
    app.run(main)
