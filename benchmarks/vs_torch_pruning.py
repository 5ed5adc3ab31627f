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
environment and process (`peers/setup_torch_pruning.sh`). Before testing,
both tools set the BatchNorm statistics of every network (pruned or not) to
those of the first `--recalibrate_bn` training images: the moving averages
lag the weights too far in a recipe this short.

Two protocols (`--protocol`). `independent`: each tool pretrains its own
network from its own random start. `same_start`: the network Keras
pretrained is copied into the PyTorch twin (`torch_layout`; the peer checks
that the twin's outputs equal Keras' within 1e-4 before it trains), so both
tools prune and fine-tune from the same weights and only pruning and
fine-tuning differ (the twin fine-tunes with a fresh Adam, as it always
does after `pruner.step()`).

Arms besides the methods: a `_distill` suffix fine-tunes the method with
`distill=True` (the student also learns from the network before pruning,
`keras.distillation`), a `_distill_trained` suffix with the unpruned network
trained all `--epochs` as the teacher (saved beside the snapshot when the
baseline is trained); `--scratch_of=<method>` trains each architecture that
method pruned to from a fresh random start for the same `--epochs` (the
control of Liu et al., *Rethinking the Value of Network Pruning*, ICLR 2019).

Each finished (network, tool, method, ratio, seed) run is written at once to
a JSON file of its own in `results/vs_torch_pruning_runs/<recipe>/`
(committed; the recipe: protocol, data sizes, epochs, steps, batch size,
learning rate); the networks after `--pretrain_epochs` stay in
`results/runs/vs_torch_pruning/<recipe>/` (not committed). A rerun of the
same recipe skips finished runs (`--resume`, the default), a changed recipe
gets directories of its own, and the summary is built from every finished
run of the recipe. On a fresh clone the snapshots are gone: a seed with runs
still to do from its snapshot runs again from a new one, so run one seed's
work to the end in one invocation.

Cost on 2 CPU cores with nothing else running (Keras, plain CNN): about 7 s
per epoch of 10,000 images, 41 s on 60,000; a full-set run of 8 epochs is
about 6 minutes, with distillation about a third more (the teacher's
forward pass), and Torch-Pruning on 1 thread several times that. One seed
of one network at two ratios with the default, its distilled and scratch
arms and the peer: about 60-80 minutes on the full set.

Methods that find their own size (`--own_size_methods`: NodeDrop, Standout,
DARN) run once per setting and go on the same plot, one line per method.

Examples:

    python benchmarks/vs_torch_pruning.py --protocol=same_start --networks=plain --ratios=4,16 \
        --seeds=0 --methods=magnitude_uniform,magnitude_uniform_distill \
        --scratch_of=magnitude_uniform --peer_python=$HOME/.venvs/torch-pruning/bin/python
    python benchmarks/vs_torch_pruning.py --networks=residual --ratios=2,4,8,16 --seeds=0 \\
        --methods=magnitude_uniform,magnitude_global --num_train=10000 \\
        --peer_python=$HOME/.venvs/torch-pruning/bin/python
    python benchmarks/vs_torch_pruning.py --num_train=10000 --tools=   # summary of finished runs
    python benchmarks/vs_torch_pruning.py --quick        # a smoke run, under results/runs/

Writes `<output_dir>/vs_torch_pruning.{json,md}` and `_<network>.png` (accuracy
against parameters, one line per tool and method).
"""

import glob
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
flags.DEFINE_list("methods", ["magnitude_uniform", "magnitude_global", "magnitude_l1", "bn_scale",
                              "taylor1", "activation_variance", "weight_l1", "random"],
                  "keras_darn pruning methods (registered names; a '_uniform' or '_global' suffix "
                  "runs it with global_pruning=False or True, no suffix at the method's default; "
                  "a further '_reset' suffix, with reset_optimizer=True; 'unpruned_reset': the "
                  "unpruned network trained on from the snapshot with a fresh Adam, as the "
                  "PyTorch twin's baseline is).")
flags.DEFINE_list("own_size_methods", [],
                  "keras_darn methods that find their own size, one run per 'name:key=value' "
                  "setting: 'nodedrop_bn:lam=1e-4' and 'standout:units=16' train from scratch "
                  "for --epochs with their callback; 'darn:max_accuracy_drop=0.015' starts "
                  "from the snapshot after --pretrain_epochs, at most --steps thresholds with "
                  "one epoch of retraining each.")
flags.DEFINE_integer("pretrain_epochs", 3, "Epochs before the first pruning step.")
flags.DEFINE_integer("steps", 5, "Pruning steps, each followed by one epoch.")
flags.DEFINE_integer("batch_size", 256, "Batch size.")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
flags.DEFINE_integer("num_train", 60000, "Training examples (a stratified subset when fewer).")
flags.DEFINE_integer("num_test", 10000, "Test examples.")
flags.DEFINE_integer("num_score", 2000, "Training examples data criteria score units on.")
flags.DEFINE_integer("recalibrate_bn", 2000,
                     "Before testing, both tools set every BatchNorm's moving statistics to "
                     "the statistics of this many training images (0: keep the moving averages).")
flags.DEFINE_string("peer_python", "",
                    "Python of the Torch-Pruning environment (made by "
                    "benchmarks/peers/setup_torch_pruning.sh); empty: skip the peer.")
flags.DEFINE_list("tools", ["keras_darn", "torch_pruning"],
                  "Tools to run now (empty: only summarise the finished runs).")
flags.DEFINE_bool("peer_global", False, "Also run Torch-Pruning with global_pruning=True.")
flags.DEFINE_integer("peer_threads", 1, "torch threads of the peer (0: torch's default).")
flags.DEFINE_bool("resume", True, "Skip the runs of this recipe whose result file exists.")
flags.DEFINE_enum("protocol", "independent", ["independent", "same_start"],
                  "independent: each tool pretrains its own network; same_start: the network "
                  "pretrained in Keras is copied into the PyTorch twin (outputs checked equal) "
                  "and both tools prune and fine-tune from those weights.")
flags.DEFINE_list("scratch_of", [],
                  "keras_darn methods whose pruned architecture is also trained from scratch "
                  "(a fresh random start) for the same --epochs, as '<method>_scratch'.")

L = keras.layers
SUFFIXES = {"_uniform": False, "_global": True}
TRAINED_TEACHER = "trained"  # a `_distill_trained` arm's teacher: the unpruned network, trained


def method_options(name):
    """`'magnitude_global_reset'` -> `('magnitude', {'global_pruning': True, 'reset_optimizer': True})`.

    A `'_distill'` suffix (before the others) fine-tunes with `distill=True`:
    the student also learns from the network as it was before pruning;
    `'_distill_trained'` from the unpruned network trained all the epochs
    (`options["distill"] == TRAINED_TEACHER`, loaded by `run_keras`).
    """
    options = {}
    if name.endswith("_distill_trained"):
        name, options["distill"] = name[:-len("_distill_trained")], TRAINED_TEACHER
    elif name.endswith("_distill"):
        name, options["distill"] = name[:-len("_distill")], True
    if name.endswith("_reset"):
        name, options["reset_optimizer"] = name[:-len("_reset")], True
    for suffix, global_pruning in SUFFIXES.items():
        if name.endswith(suffix):
            name, options["global_pruning"] = name[:-len(suffix)], global_pruning
    return name, options


def build_keras(network):
    """The three networks: plain CNN, residual CNN with BatchNorm, depthwise-separable CNN."""
    # Momentum 0.9 (PyTorch's default): at Keras' 0.99 the moving statistics
    # are far from converged after the 40 steps an epoch of 10,000 images
    # takes, and the network predicts near chance in inference mode.
    def batch_norm():
        return L.BatchNormalization(momentum=0.9)

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
            return L.ReLU()(batch_norm()(L.Conv2D(width, 3, padding="same")(x)))

        def block(x, width):
            y = conv_bn(x, width)
            y = batch_norm()(L.Conv2D(width, 3, padding="same")(y))
            return L.ReLU()(L.Add()([x, y]))

        x = L.MaxPooling2D()(block(conv_bn(inputs, 32), 32))
        x = L.MaxPooling2D()(block(conv_bn(x, 64), 64))
        x = L.GlobalAveragePooling2D()(x)
    else:
        # MobileNet's block: depthwise, BatchNorm, ReLU, pointwise, BatchNorm, ReLU.
        def separable(x, width):
            x = L.ReLU()(batch_norm()(L.DepthwiseConv2D(3, padding="same")(x)))
            return L.ReLU()(batch_norm()(L.Conv2D(width, 1)(x)))

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


def accuracy(model, data):
    (x, _), (x_test, y_test) = data
    if FLAGS.recalibrate_bn:  # the moving averages lag the weights in a recipe this short
        model = darn.rebuild.recalibrate_batch_norm(model, x[:FLAGS.recalibrate_bn], compile=False)
    return float(np.mean(model.predict(x_test, batch_size=1000, verbose=0).argmax(-1) == y_test))


def recipe_dir():
    """`runs/vs_torch_pruning/<recipe>/`: runs of one recipe only, never mixed with another's."""
    tag = (f"n{FLAGS.num_train}_t{FLAGS.num_test}_e{FLAGS.epochs}_p{FLAGS.pretrain_epochs}"
           f"_s{FLAGS.steps}_b{FLAGS.batch_size}_lr{FLAGS.learning_rate:g}_score{FLAGS.num_score}"
           + (f"_bn{FLAGS.recalibrate_bn}" if FLAGS.recalibrate_bn else "")
           + ("_same_start" if FLAGS.protocol == "same_start" else ""))
    return harness.runs_dir("vs_torch_pruning", tag)


def records_dir():
    """`<output_dir>/vs_torch_pruning_runs/<recipe>/` (by default under `results/`): one JSON
    per finished run, committed as it lands.

    The recipe's networks (snapshots) stay in `recipe_dir()`, which is not.
    """
    path = os.path.join(FLAGS.output_dir, "vs_torch_pruning_runs", os.path.basename(recipe_dir()))
    os.makedirs(path, exist_ok=True)
    return path


def run_path(network, tool, method, ratio, seed):
    return os.path.join(records_dir(),
                        f"{network}__{tool}__{method}__r{float(ratio):g}__s{seed}.json")





def done(path):
    return FLAGS.resume and os.path.exists(path)


def save_run(row):
    path = run_path(row["network"], row["tool"], row["method"], row["ratio"], row["seed"])
    harness.write_json(path + ".tmp", row)
    os.replace(path + ".tmp", path)
    print({k: v for k, v in row.items() if k not in ("widths", "architecture")}, flush=True)


SNAPSHOT_SUFFIXES = {"keras_darn": ".keras", "torch_pruning": ".pt"}  # the peer writes the .pt


def snapshot_path(work, network, seed, tool):
    """Where `tool` keeps the network of one seed after `--pretrain_epochs`."""
    return os.path.join(work, f"{network}_s{seed}_pretrained{SNAPSHOT_SUFFIXES[tool]}")


def trained_teacher_path(snapshot):
    """Where the unpruned network trained all the epochs is kept, beside its snapshot."""
    return snapshot[:-len(".keras")] + "_unpruned.keras"


def pretrained(network, seed, data, work):
    """The network after `--pretrain_epochs` (saved) and its unpruned baseline, each made once."""
    (x, y), _ = data
    snapshot = snapshot_path(work, network, seed, "keras_darn")
    info = snapshot[:-len(".keras")] + ".json"
    unpruned = run_path(network, "keras_darn", "unpruned", 1, seed)
    if done(snapshot) and done(info) and done(unpruned):
        pretrain_seconds = harness.read_json(info)["pretrain_seconds"]
        if FLAGS.protocol == "same_start" and not os.path.exists(
                start_weights_path(work, network, seed)):
            save_start_weights(keras.saving.load_model(snapshot), x, pretrain_seconds,
                               start_weights_path(work, network, seed))
        return snapshot, pretrain_seconds
    keras.utils.set_random_seed(seed)
    model = compiled(build_keras(network))
    began = time.time()
    model.fit(x, y, epochs=FLAGS.pretrain_epochs, batch_size=FLAGS.batch_size, verbose=0)
    pretrain_seconds = time.time() - began
    model.save(snapshot)
    harness.write_json(info, {"pretrain_seconds": pretrain_seconds})
    if FLAGS.protocol == "same_start":
        save_start_weights(model, x, pretrain_seconds, start_weights_path(work, network, seed))
    model.fit(x, y, initial_epoch=FLAGS.pretrain_epochs, epochs=FLAGS.epochs,
              batch_size=FLAGS.batch_size, verbose=0)
    model.save(trained_teacher_path(snapshot))
    save_run({"tool": "keras_darn", "method": "unpruned", "network": network,
                    "seed": seed, "ratio": 1, "params": darn.count_params(model),
                    "flops": darn.count_flops(model), "accuracy": accuracy(model, data),
                    "seconds": time.time() - began})
    return snapshot, pretrain_seconds


def start_weights_path(work, network, seed):
    """The Keras-pretrained network of one seed in the PyTorch twin's layout (same_start)."""
    return os.path.join(work, f"{network}_s{seed}_keras_start.npz")


def save_start_weights(model, x, pretrain_seconds, path):
    """The twin's weights, and Keras' outputs on 256 training images to check them against."""
    x_check = x[:256]
    np.savez(path, x_check=x_check, probabilities=model.predict(x_check, verbose=0),
             pretrain_seconds=pretrain_seconds,
             **{f"w{i}": w for i, w in enumerate(torch_layout(model))})


def torch_layout(model):
    """The weights of `model` in the order and layout of its PyTorch twin's modules.

    Conv2D kernels (kh, kw, in, out) become (out, in, kh, kw); depthwise
    kernels (kh, kw, in, 1) become (in, 1, kh, kw); Dense kernels (in, out)
    become (out, in), and the one after a Flatten has its rows reordered from
    Keras' (height, width, channel) to PyTorch's (channel, height, width);
    BatchNormalization gives gamma, beta, mean and variance as PyTorch's
    weight, bias, running mean and running variance.
    """
    arrays = []
    flattened = None
    for layer in model.layers:
        weights = layer.get_weights()
        if isinstance(layer, L.Flatten):
            flattened = tuple(layer.input.shape[1:])
        elif isinstance(layer, L.DepthwiseConv2D):
            arrays += [weights[0].transpose(2, 3, 0, 1), *weights[1:]]
        elif isinstance(layer, L.Conv2D):
            arrays += [weights[0].transpose(3, 2, 0, 1), *weights[1:]]
        elif isinstance(layer, L.BatchNormalization):
            arrays += weights
        elif isinstance(layer, L.Dense):
            kernel = weights[0]
            if flattened is not None:
                height, width, channels = flattened
                kernel = kernel.reshape(height, width, channels, -1).transpose(2, 0, 1, 3)
                kernel = kernel.reshape(height * width * channels, -1)
                flattened = None
            arrays += [kernel.T, *weights[1:]]
    return [np.ascontiguousarray(a) for a in arrays]


def train_from_scratch(network, seed, data):
    """The pruned architectures of `--scratch_of`, from a fresh random start, for `--epochs`."""
    (x, y), _ = data
    for name in FLAGS.scratch_of:
        for ratio in (float(r) for r in FLAGS.ratios):
            path = run_path(network, "keras_darn", f"{name}_scratch", ratio, seed)
            pruned = run_path(network, "keras_darn", name, ratio, seed)
            if done(path):
                continue
            if not os.path.exists(pruned):
                print(f"No pruned {name} run at {ratio:g}x (seed {seed}) to train from "
                      "scratch: list the method in --methods.", flush=True)
                continue
            keras.utils.set_random_seed(seed + 1000)  # a start of its own
            model = compiled(keras.models.model_from_json(harness.read_json(pruned)["architecture"]))
            began = time.time()
            model.fit(x, y, epochs=FLAGS.epochs, batch_size=FLAGS.batch_size, verbose=0)
            save_run({
                "tool": "keras_darn", "method": f"{name}_scratch", "network": network,
                "seed": seed, "ratio": ratio, "params": darn.count_params(model),
                "flops": darn.count_flops(model), "accuracy": accuracy(model, data),
                "seconds": time.time() - began})


def run_keras(network, seed, data, work):
    """keras_darn's runs of one network and seed that are not finished yet."""
    (x, y), _ = data
    base_params = darn.count_params(build_keras(network))
    # Absolute epochs: the snapshot has trained epochs 0 .. pretrain - 1; the
    # first step is at the end of epoch pretrain - 1, each later one after an
    # epoch of fine-tuning, and the last step is fine-tuned too.
    schedule = darn.schedules.Linear(start=FLAGS.pretrain_epochs - 1,
                                     end=FLAGS.pretrain_epochs + FLAGS.steps - 2)
    score = (x[-FLAGS.num_score:], y[-FLAGS.num_score:])
    snapshot = None
    for name in FLAGS.methods:
        if name == UNPRUNED_RESET:
            unpruned_with_fresh_optimizer(network, seed, data, work)
            continue
        method, options = method_options(name)
        for ratio in (float(r) for r in FLAGS.ratios):
            if done(run_path(network, "keras_darn", name, ratio, seed)):
                continue
            if snapshot is None:
                snapshot, pretrain_seconds = pretrained(network, seed, data, work)
            keras.utils.set_random_seed(seed)
            start = keras.saving.load_model(snapshot)
            began = time.time()
            target = int(base_params // ratio)
            arm_options = dict(options)
            if arm_options.get("distill") == TRAINED_TEACHER:
                arm_options["distill"] = trained_teacher(snapshot)
            result = darn.resize(
                start, method, darn.Target(params=target), x=x, y=y,
                validation_data=score, epochs=FLAGS.epochs, schedule=schedule,
                batch_size=FLAGS.batch_size, initial_epoch=FLAGS.pretrain_epochs,
                **arm_options)
            small = result.model
            save_run({
                "tool": "keras_darn", "method": name, "network": network, "seed": seed,
                "ratio": ratio, "params": darn.count_params(small),
                "flops": darn.count_flops(small), "target_params": target,
                "accuracy": accuracy(small, data),
                "seconds": (pretrain_seconds or 0) + time.time() - began,
                **({} if pretrain_seconds is not None else {"pretrain_seconds_included": False}),
                "widths": [int(getattr(l, "filters", 0) or getattr(l, "units", 0))
                           for l in small.layers if hasattr(l, "kernel")
                           and not isinstance(l, L.DepthwiseConv2D)],
                "architecture": small.to_json(),  # what `--scratch_of` trains from scratch
            })
    if snapshot is None and not done(run_path(network, "keras_darn", "unpruned", 1, seed)):
        pretrained(network, seed, data, work)  # the unpruned baseline alone


UNPRUNED_RESET = "unpruned_reset"


def unpruned_with_fresh_optimizer(network, seed, data, work):
    """The unpruned network trained on from the snapshot with a fresh Adam.

    The PyTorch twin's baseline (`same_start`) trains on from Keras' weights
    with an optimizer of its own, whose moments start at zero, while Keras'
    baseline carries its Adam state from the first epochs: this run trains
    the Keras network the twin's way, to tell that difference from the
    frameworks'.
    """
    (x, y), _ = data
    path = run_path(network, "keras_darn", UNPRUNED_RESET, 1, seed)
    if done(path):
        return
    snapshot, pretrain_seconds = pretrained(network, seed, data, work)
    keras.utils.set_random_seed(seed)
    model = compiled(keras.saving.load_model(snapshot, compile=False))
    began = time.time()
    model.fit(x, y, initial_epoch=FLAGS.pretrain_epochs, epochs=FLAGS.epochs,
              batch_size=FLAGS.batch_size, verbose=0)
    save_run({"tool": "keras_darn", "method": UNPRUNED_RESET, "network": network,
              "seed": seed, "ratio": 1, "params": darn.count_params(model),
              "flops": darn.count_flops(model), "accuracy": accuracy(model, data),
              "seconds": pretrain_seconds + time.time() - began})


def trained_teacher(snapshot):
    """The unpruned network trained all the epochs, the teacher of `_distill_trained` arms."""
    path = trained_teacher_path(snapshot)
    if not os.path.exists(path):
        raise RuntimeError(
            f"No trained teacher at {path}: its seed's baseline was trained before teachers were "
            "kept. Remove the seed's snapshot and runs to train them again, or drop the "
            "'_distill_trained' arm.")
    return keras.saving.load_model(path)


TARGET_AMOUNTS = ("units", "fraction", "max_accuracy_drop")
FROM_SNAPSHOT = ("darn",)  # the other methods that find their own size train from scratch


def own_size_label(spec):
    """`'nodedrop_bn:lam=1e-4'` -> `('nodedrop_bn', 'nodedrop_bn(lam=0.0001)', {...}, {...})`."""
    name, _, setting = spec.partition(":")
    key, _, value = setting.partition("=")
    if not key or not value:
        raise ValueError(f"Expected --own_size_methods entries as 'name:key=value'. "
                         f"Received: {spec!r}")
    number = int(value) if key == "units" else float(value)
    target = {key: number} if key in TARGET_AMOUNTS else {}
    options = {} if target else {key: number}
    return name, f"{name}({key}={number:g})", target, options


def run_own_size(network, seed, data, work):
    """keras_darn's methods that find their own size (NodeDrop, Standout, DARN), per setting."""
    (x, y), _ = data
    score = (x[-FLAGS.num_score:], y[-FLAGS.num_score:])
    for spec in FLAGS.own_size_methods:
        name, label, target, options = own_size_label(spec)
        path = run_path(network, "keras_darn", label, 0, seed)
        if done(path):
            continue
        if name in FROM_SNAPSHOT:
            snapshot, pretrain_seconds = pretrained(network, seed, data, work)
            keras.utils.set_random_seed(seed)
            began = time.time()
            small = darn.resize(
                keras.saving.load_model(snapshot), "darn", darn.Target(**target), x=x, y=y,
                validation_data=score, epochs=1, max_retrains=1, batch_size=FLAGS.batch_size,
                schedule=darn.schedules.LogSpaced(0.05, 0.6, FLAGS.steps), **options).model
            seconds = pretrain_seconds + time.time() - began
        else:
            keras.utils.set_random_seed(seed)
            began = time.time()
            if name.startswith("nodedrop"):
                options = {"input_range": (0, 1), "batch_size": FLAGS.batch_size, **options}
            try:
                model, callback = darn.prepare(build_keras(network), name, darn.Target(**target),
                                               **options)
            except ValueError as error:  # e.g. NodeDrop-BN on a network without BatchNorm
                print(f"{label} does not apply to the {network} CNN: {error}", flush=True)
                continue
            compiled(model).fit(x, y, epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
                                verbose=0, callbacks=[callback])
            small = callback.finish().model
            seconds = time.time() - began
        save_run({
            "tool": "keras_darn", "method": label, "network": network, "seed": seed, "ratio": 0,
            "params": darn.count_params(small), "flops": darn.count_flops(small),
            "accuracy": accuracy(small, data), "seconds": seconds})


def peer_variants():
    return ["uniform"] + (["global"] if FLAGS.peer_global else [])


def run_peer(network, seeds, data_path, work):
    """Torch-Pruning's unfinished runs, in its own environment and process."""
    variants = peer_variants()
    if all(done(path) for seed in seeds
           for path in snapshot_runs(work, network, "torch_pruning", seed)):
        return
    if not FLAGS.resume:
        for path in glob.glob(os.path.join(records_dir(), f"{network}__torch_pruning__*")):
            os.remove(path)
    command = [FLAGS.peer_python, os.path.join(harness.BENCHMARKS_DIR, "peers",
                                               "torch_pruning_peer.py"),
               f"--data={data_path}", f"--run_dir={work}", f"--records_dir={records_dir()}",
               f"--network={network}",
               f"--ratios={','.join(FLAGS.ratios)}", f"--seeds={','.join(map(str, seeds))}",
               f"--epochs={FLAGS.epochs}", f"--pretrain_epochs={FLAGS.pretrain_epochs}",
               f"--steps={FLAGS.steps}", f"--batch_size={FLAGS.batch_size}",
               f"--learning_rate={FLAGS.learning_rate}", f"--variants={','.join(variants)}",
               f"--threads={FLAGS.peer_threads}", f"--recalibrate_bn={FLAGS.recalibrate_bn}",
               f"--same_start={FLAGS.protocol == 'same_start'}"]
    subprocess.run(command, check=True)


def snapshot_runs(work, network, tool, seed):
    """The run files this command asks for that start from one network, tool and seed's snapshot."""
    if tool == "torch_pruning":
        methods = [(f"group_magnitude_{v}", r) for v in peer_variants() for r in FLAGS.ratios]
    else:
        methods = ([(m, 1 if m == UNPRUNED_RESET else r) for m in FLAGS.methods
                    for r in FLAGS.ratios]
                   + [(label, 0) for name, label, _, _ in map(own_size_label, FLAGS.own_size_methods)
                      if name in FROM_SNAPSHOT])
    return [run_path(network, tool, m, r, seed) for m, r in [("unpruned", 1), *methods]]


def discard_runs_of_lost_snapshots(work, network, seeds, tools):
    """Removes the runs of a seed whose snapshot is gone, when runs from it are still to do.

    A fresh clone gets the run files back from the summary but not the
    snapshots they were pruned from; a run still to do would train a new
    snapshot (and a new unpruned baseline), so the restored runs of that
    network, tool and seed are run again from it rather than mixed with it.
    """
    for tool in tools:
        for seed in seeds:
            if os.path.exists(snapshot_path(work, network, seed, tool)):
                continue
            if all(os.path.exists(p) for p in snapshot_runs(work, network, tool, seed)):
                continue
            stale = glob.glob(os.path.join(records_dir(), f"{network}__{tool}__*__s{seed}.json"))
            for path in stale:
                os.remove(path)
            if stale:
                print(f"{len(stale)} {tool} runs of {network} seed {seed} came from a snapshot "
                      "that is gone; they run again from a new one", flush=True)


def restore_runs(work):
    """Writes back the run files of this recipe that the last summary holds.

    Summaries written while run files lived in `results/runs/` (not
    committed) are the only record of those runs, so their rows are
    restored as run files (existing files win) and later runs add to them.

    Returns:
        The number of run files restored.
    """
    path = harness.result_prefix() + ".json"
    if not os.path.exists(path):
        return 0
    previous = harness.read_json(path)
    if previous["meta"].get("runs") != os.path.relpath(work, harness.BENCHMARKS_DIR):
        return 0
    restored = 0
    for row in previous["rows"]:
        run = run_path(row["network"], row["tool"], row["method"], row["ratio"], row["seed"])
        if not os.path.exists(run):
            harness.write_json(run, row)
            restored += 1
    return restored


def finished_runs(work):
    return [harness.read_json(path)
            for path in sorted(glob.glob(os.path.join(records_dir(), "*__*__*__r*__s*.json")))]


# The front door's default pruner at its defaults: "magnitude", the same
# fraction of every group (runs of the recipe name the ranking explicitly).
DEFAULT = ("keras_darn", "magnitude_uniform")
PEERS = [("torch_pruning", "group_magnitude_uniform"), ("torch_pruning", "group_magnitude_global")]


def summarize(rows):
    """Mean and sd over seeds per (network, tool, method, ratio); drop from own baseline."""
    groups = {}
    for r in rows:
        groups.setdefault((r["network"], r["tool"], r["method"], r["ratio"]), []).append(r)
    baselines = {(n, t): {r["seed"]: r["accuracy"] for r in g}
                 for (n, t, m, _), g in groups.items() if m == "unpruned"}
    summary = []
    for (network, tool, method, ratio), group in sorted(
            groups.items(), key=lambda item: (item[0][0], item[0][2] != "unpruned", item[0][3],
                                              item[0][1], item[0][2])):
        accuracies = [r["accuracy"] for r in group]
        own = baselines.get((network, tool), {})
        drops = [r["accuracy"] - own[r["seed"]] for r in group if r["seed"] in own]
        summary.append({
            "network": network, "tool": tool, "method": method, "ratio": ratio,
            "seeds": sorted(r["seed"] for r in group),
            "params": statistics.mean(r["params"] for r in group),
            "flops": statistics.mean(r["flops"] for r in group),
            "accuracy_mean": statistics.mean(accuracies),
            "accuracy_sd": statistics.stdev(accuracies) if len(group) > 1 else 0.0,
            "drop": statistics.mean(drops) if drops else None,
            "seconds": statistics.mean(r["seconds"] for r in group),
            "within_target": all(r["params"] <= r.get("target_params", r["params"])
                                 for r in group),
        })
    return summary


def compare(rows):
    """keras_darn's default against each Torch-Pruning variant, point by point, on common seeds."""
    acc = {(r["network"], r["tool"], r["method"], float(r["ratio"]), r["seed"]): r["accuracy"]
           for r in rows}
    par = {(r["network"], r["tool"], r["method"], float(r["ratio"]), r["seed"]): r["params"]
           for r in rows}
    out = []
    for network, ratio in sorted({(r["network"], float(r["ratio"])) for r in rows
                                  if r["method"] != "unpruned"}):
        for peer in PEERS:
            sides = [(*DEFAULT, ratio), (*peer, ratio), (DEFAULT[0], "unpruned", 1.0),
                     (peer[0], "unpruned", 1.0)]
            seeds = sorted(set.intersection(
                *({k[-1] for k in acc if k[:-1] == (network, *side)} for side in sides)))
            if not seeds:
                continue
            ours, theirs, our_base, their_base = (
                statistics.mean(acc[(network, *side, s)] for s in seeds) for side in sides)
            gap, drop_gap = ours - theirs, (ours - our_base) - (theirs - their_base)
            out.append({
                "network": network, "ratio": ratio, "peer": peer[1], "seeds": seeds,
                "params": statistics.mean(par[(network, *sides[0], s)] for s in seeds),
                "peer_params": statistics.mean(par[(network, *sides[1], s)] for s in seeds),
                "accuracy_gap": gap, "drop_gap": drop_gap,
                "within_0_2": gap >= -0.002 and drop_gap >= -0.002,
                "ahead_0_5": gap >= 0.005 and drop_gap >= 0.005 if ratio >= 8 else None,
            })
    return out


def check_twins(rows):
    """The unpruned parameter counts of the two tools, per network; a mismatch is an error."""
    counts = {}
    for r in rows:
        if r["method"] == "unpruned":
            counts.setdefault(r["network"], {})[r["tool"]] = r["params"]
    for network, by_tool in counts.items():
        if len(set(by_tool.values())) > 1:
            raise ValueError(f"The {network} twins differ in parameters: {by_tool}")
    return counts


def write(rows, meta):
    prefix = harness.result_prefix()
    meta["twin_params"] = check_twins(rows)
    summary, comparison = summarize(rows), compare(rows)
    harness.write_json(prefix + ".json", {
        "meta": meta, "summary": summary, "comparison": comparison,
        "rows": [{k: v for k, v in r.items() if k != "architecture"} for r in rows]})
    table = harness.markdown_table(
        ["network", "fewer params", "tool", "method", "params", "MFLOPs", "accuracy % (sd)",
         "vs own unpruned", "seeds", "train s"],
        [[s["network"], f"{s['ratio']:g}x" if s["ratio"] else "own size", s["tool"], s["method"],
          f"{s['params']:,.0f}" + ("" if s["within_target"] else " (over target)"),
          f"{s['flops'] / 1e6:.2f}",
          f"{100 * s['accuracy_mean']:.2f} ({100 * s['accuracy_sd']:.2f})",
          "" if s["drop"] is None else f"{100 * s['drop']:+.2f}",
          ",".join(map(str, s["seeds"])), f"{s['seconds']:.0f}"] for s in summary])
    yes_no = lambda value: "-" if value is None else ("yes" if value else "no")  # noqa: E731
    verdicts = harness.markdown_table(
        ["network", "fewer params", "against", "seeds", "accuracy gap", "drop gap",
         "within 0.2", "ahead by 0.5 (8x, 16x)"],
        [[c["network"], f"{c['ratio']:g}x", c["peer"], ",".join(map(str, c["seeds"])),
          f"{100 * c['accuracy_gap']:+.2f}", f"{100 * c['drop_gap']:+.2f}",
          yes_no(c["within_0_2"]), yes_no(c["ahead_0_5"])] for c in comparison])
    harness.write_markdown(prefix + ".md", [
        "# keras_darn vs Torch-Pruning 1.6.1, Fashion-MNIST", "",
        f"Recipe: {meta['recipe']}. Machine: {meta['machine']}.",
        "FLOPs count a multiply-add as 2 on both sides. Gaps: keras_darn's default, `magnitude` "
        "with the same fraction of every group (`magnitude_uniform` in the table), minus Torch-Pruning, in points, on the seeds both have.", "", *table, "", *verdicts])
    for network in sorted({s["network"] for s in summary}):
        fig, (ax,) = harness.figure(width=9.0)
        lines = {}
        for s in summary:
            if s["network"] == network and s["method"] != "unpruned":
                # The settings of a method that finds its own size make one line.
                lines.setdefault(f"{s['tool']} {s['method'].split('(')[0]}", []).append(s)
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
        harness.label_axes(ax, "parameters", "test accuracy (%)", f"{network} CNN, Fashion-MNIST",
                           loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small")
        fig.subplots_adjust(left=0.08, right=0.66)  # the legend beside the axes
        harness.save_figure(fig, f"{prefix}_{network}.png")
    print("\n".join(table + [""] + verdicts))


def main(argv):
    del argv
    harness.apply_quick({"networks": ["plain"], "ratios": ["4"], "seeds": ["0"],
                         "methods": ["magnitude_uniform"], "epochs": 2, "pretrain_epochs": 1,
                         "steps": 1, "num_train": 1024, "num_test": 512, "num_score": 256})
    if FLAGS.protocol == "same_start" and FLAGS.name == "vs_torch_pruning":
        FLAGS.name = "vs_torch_pruning_same_start"  # beside the independent protocol's summary
    seeds = harness.seeds()
    work = recipe_dir()
    if FLAGS.resume:
        print(f"{restore_runs(work)} finished runs restored from the last summary", flush=True)
    data = harness.load_fashion(FLAGS.num_train, FLAGS.num_test, data_dir=FLAGS.data_dir)
    data_path = os.path.join(work, "data.npz")
    run_torch = "torch_pruning" in FLAGS.tools and FLAGS.peer_python
    if run_torch and not os.path.exists(data_path):
        (x, y), (x_test, y_test) = data
        np.savez(data_path, x_train=x, y_train=y.astype("int64"), x_test=x_test,
                 y_test=y_test.astype("int64"))
    for network in FLAGS.networks:
        if FLAGS.resume:
            discard_runs_of_lost_snapshots(
                work, network, seeds,
                [t for t in FLAGS.tools if t == "keras_darn" or (t == "torch_pruning" and run_torch)])
        if run_torch and FLAGS.protocol == "same_start":
            for seed in seeds:  # the peer starts from the network Keras pretrained
                pretrained(network, seed, data, work)
        if run_torch:
            run_peer(network, seeds, data_path, work)
        for seed in seeds if "keras_darn" in FLAGS.tools else []:
            run_keras(network, seed, data, work)
            train_from_scratch(network, seed, data)
            run_own_size(network, seed, data, work)
    rows = finished_runs(work)
    meta = {
        "recipe": (f"{FLAGS.epochs} epochs in all, Adam {FLAGS.learning_rate:g}, batch "
                   f"{FLAGS.batch_size}, {FLAGS.pretrain_epochs} epochs then {FLAGS.steps} "
                   f"pruning steps each followed by 1 epoch; {len(data[0][0]):,} training / "
                   f"{len(data[1][0]):,} test images"
                   + (f"; BatchNorm statistics re-estimated on {FLAGS.recalibrate_bn:,} training "
                      "images before testing" if FLAGS.recalibrate_bn else "")),
        "machine": harness.describe_machine(),
        "command": " ".join(sys.argv),
        "runs": os.path.relpath(work, harness.BENCHMARKS_DIR),
    }
    write(rows, meta)


if __name__ == "__main__":
    app.run(main)
