"""Peer: Torch-Pruning 1.6.1 on the networks of `benchmarks/vs_torch_pruning.py`.

Runs in its OWN process and virtual environment (CPU `torch` and
`torch-pruning`, never imported by keras_darn); `vs_torch_pruning.py` calls it
with the same data, the same architectures (PyTorch twins of the Keras ones,
parameter for parameter), the same epochs, optimizer and batch size.

Recipe per seed: train the unpruned network `--pretrain_epochs` epochs, keep
a copy, train it on to `--epochs` (the unpruned baseline). For every ratio,
from the copy: `BasePruner` with `GroupMagnitudeImportance(p=2)` (the
library's default importance), `iterative_steps=--steps`, the final Linear
ignored, and a `pruning_ratio` found by bisection on dry runs so that the
pruned network has at most `base_params / ratio` parameters; then `--steps`
times `pruner.step()` followed by one epoch of fine-tuning with a new Adam
(pruning replaces the parameters). `--global_pruning` switches on its global
ranking.

Before testing, every BatchNorm's running statistics are set to those of the
first `--recalibrate_bn` training images, as on the keras_darn side.

FLOPs are twice the multiply-adds `tp.utils.count_ops_and_params` counts
(`keras_darn.count_flops` counts a multiply-add as 2). Parameters are
counted the way Keras counts them (BatchNorm running mean
and variance included), so the twins have equal counts and the targets mean
the same on both sides.

With `--same_start`, the network after `--pretrain_epochs` is the one
Keras trained, its weights copied into the twin (`load_keras_start`); the
softmax of the twin's logits must equal Keras' outputs within 1e-4 on the
256 training images saved with them, or the run stops.

Every finished run (unpruned baseline, or one variant at one ratio) is
written at once to its own JSON file in `--run_dir`, named
`<network>__torch_pruning__<method>__r<ratio>__s<seed>.json`, and the network
after `--pretrain_epochs` is kept there (`<network>_s<seed>_pretrained.pt`,
with the state of its data order); a rerun skips the runs whose file exists.

Set-up (once): `bash benchmarks/peers/setup_torch_pruning.sh` (default
`~/.venvs/torch-pruning`). Run (normally by vs_torch_pruning.py):

    ~/.venvs/torch-pruning/bin/python benchmarks/peers/torch_pruning_peer.py \\
        --data=split.npz --run_dir=runs --network=plain --ratios=4,16 --seeds=0
"""

import copy
import importlib.metadata
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch_pruning as tp
from absl import app
from absl import flags

FLAGS = flags.FLAGS
TP_VERSION = importlib.metadata.version("torch-pruning")  # its __version__ says 1.6.0 in 1.6.1
flags.DEFINE_string("data", None, "npz with x_train, y_train, x_test, y_test (NHWC floats).")
flags.DEFINE_string("records_dir", None,
                    "Directory of the per-run JSON files; defaults to --run_dir.")
flags.DEFINE_string("run_dir", None,
                    "Directory of the per-run JSON files (existing ones are skipped).")
flags.DEFINE_enum("network", "plain", ["plain", "residual", "separable"], "Architecture.")
flags.DEFINE_list("ratios", ["2", "4", "8", "16"], "Parameter reduction factors.")
flags.DEFINE_list("seeds", ["0"], "Seeds.")
flags.DEFINE_integer("epochs", 8, "Epochs in all.")
flags.DEFINE_integer("pretrain_epochs", 3, "Epochs before the first pruning step.")
flags.DEFINE_integer("steps", 5, "Pruning steps, each followed by one epoch.")
flags.DEFINE_integer("batch_size", 256, "Batch size.")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
flags.DEFINE_list("variants", ["uniform"], "'uniform' (per-layer, the default of BasePruner) "
                  "and/or 'global' (global_pruning=True).")
flags.DEFINE_integer("recalibrate_bn", 0,
                     "Before testing, set every BatchNorm's running statistics to those of "
                     "this many training images (0: keep the running averages).")
flags.DEFINE_integer("threads", 0, "torch threads (0: torch's default).")
flags.DEFINE_bool("same_start", False,
                  "Start from the network Keras pretrained (`<network>_s<seed>_keras_start.npz` "
                  "in --run_dir, written by vs_torch_pruning.py) instead of pretraining here; "
                  "its outputs are checked against Keras' (1e-4) before anything trains.")
flags.mark_flags_as_required(["data", "run_dir"])


class Residual(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels, eps=1e-3, momentum=0.1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels, eps=1e-3, momentum=0.1)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(y)))


def conv_bn(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout, eps=1e-3, momentum=0.1),
            nn.ReLU()]


def separable(cin, cout):
    return [nn.Conv2d(cin, cin, 3, padding=1, groups=cin),
            nn.BatchNorm2d(cin, eps=1e-3, momentum=0.1), nn.ReLU(), nn.Conv2d(cin, cout, 1),
            nn.BatchNorm2d(cout, eps=1e-3, momentum=0.1), nn.ReLU()]


def build(network):
    """The PyTorch twin of `vs_torch_pruning.build_keras(network)`."""
    if network == "plain":
        layers = [nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1),
                  nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                  nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                  nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10)]
    elif network == "residual":
        layers = (conv_bn(1, 32) + [Residual(32), nn.MaxPool2d(2)] + conv_bn(32, 64)
                  + [Residual(64), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                     nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)])
    else:
        layers = ([nn.Conv2d(1, 32, 3, padding=1), nn.ReLU()] + separable(32, 64)
                  + [nn.MaxPool2d(2)] + separable(64, 128) + separable(128, 128)
                  + [nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                     nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10)])
    return nn.Sequential(*layers)


def init_like_keras(model):
    # Keras' defaults: Glorot-uniform kernels, zero biases.
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)


def count_params(model):
    """Parameters as Keras counts them: BatchNorm running mean and variance included."""
    buffers = sum(m.running_mean.numel() + m.running_var.numel() for m in model.modules()
                  if isinstance(m, nn.BatchNorm2d))
    return int(sum(p.numel() for p in model.parameters()) + buffers)


def train_epoch(model, optimizer, x, y, rng):
    model.train()
    order = rng.permutation(len(x))
    loss_fn = nn.CrossEntropyLoss()
    for start in range(0, len(x), FLAGS.batch_size):
        batch = order[start:start + FLAGS.batch_size]
        optimizer.zero_grad()
        loss = loss_fn(model(x[batch]), y[batch])
        loss.backward()
        optimizer.step()


def recalibrate_batch_norm(model, x):
    """Sets every BatchNorm's running mean and variance to those of `x`, in one batch."""
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.momentum = 1.0  # PyTorch's momentum weighs the new batch
    if norms and len(x):
        model.train()
        with torch.no_grad():
            model(x)
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum


def accuracy(model, data):
    x_train, _, x, y = data
    recalibrate_batch_norm(model, x_train[:FLAGS.recalibrate_bn])
    model.eval()
    with torch.no_grad():
        correct = sum(
            int((model(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum())
            for i in range(0, len(x), 1000)
        )
    return correct / len(x)


def make_pruner(model, example, ratio, global_pruning):
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    return tp.pruner.BasePruner(
        model, example, importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=ratio, iterative_steps=FLAGS.steps, ignored_layers=[last],
        global_pruning=global_pruning)


def params_after(model, example, ratio, global_pruning):
    trial = copy.deepcopy(model)
    pruner = make_pruner(trial, example, ratio, global_pruning)
    for _ in range(FLAGS.steps):
        pruner.step()
    return count_params(trial)


def ratio_for(model, example, goal, global_pruning):
    """The smallest channel pruning ratio that brings the parameters to `goal` or below.

    Parameters fall as the ratio grows only until a group would lose all its
    channels (Torch-Pruning then leaves that group whole), so the search first
    steps up from 0 to the first ratio that reaches `goal`, then bisects.
    """
    low = 0.0
    for high in np.arange(0.05, 1.0, 0.05):
        if params_after(model, example, high, global_pruning) <= goal:
            break
        low = high
    else:
        raise ValueError(f"No pruning ratio reaches {goal:.0f} parameters")
    for _ in range(10):
        middle = (low + high) / 2
        if params_after(model, example, middle, global_pruning) <= goal:
            high = middle
        else:
            low = middle
    return float(high)


def run_path(seed, method, ratio):
    name = f"{FLAGS.network}__torch_pruning__{method}__r{ratio:g}__s{seed}.json"
    return os.path.join(FLAGS.records_dir or FLAGS.run_dir, name)


def save_run(row):
    path = run_path(row["seed"], row["method"], row["ratio"])
    with open(path + ".tmp", "w") as f:
        json.dump(row, f, indent=1)
    os.replace(path + ".tmp", path)
    print(json.dumps(row), flush=True)


def load_keras_start(model, seed):
    """Copies the weights Keras pretrained into `model`; checks the outputs; returns its seconds."""
    path = os.path.join(FLAGS.run_dir, f"{FLAGS.network}_s{seed}_keras_start.npz")
    start = np.load(path)
    arrays = [start[f"w{i}"] for i in range(len([k for k in start.files if k.startswith("w")]))]
    targets = []
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            targets += [module.weight, module.bias]
        elif isinstance(module, nn.BatchNorm2d):
            targets += [module.weight, module.bias, module.running_mean, module.running_var]
    if len(targets) != len(arrays):
        raise ValueError(f"{path} holds {len(arrays)} arrays; the {FLAGS.network} twin takes "
                         f"{len(targets)}")
    with torch.no_grad():
        for target, array in zip(targets, arrays):
            if tuple(target.shape) != array.shape:
                raise ValueError(f"Shape {array.shape} from Keras for a tensor of {tuple(target.shape)}")
            target.copy_(torch.tensor(array))
    model.eval()
    with torch.no_grad():
        x = torch.tensor(np.transpose(start["x_check"], (0, 3, 1, 2)).copy())
        probabilities = torch.softmax(model(x), dim=1).numpy()
    difference = float(np.abs(probabilities - start["probabilities"]).max())
    if difference > 1e-4:
        raise ValueError(f"The twin's outputs differ from Keras' by {difference:.2e} (> 1e-4)")
    print(f"{FLAGS.network} seed {seed}: Keras' weights in the twin, outputs within "
          f"{difference:.1e}", flush=True)
    return float(start["pretrain_seconds"]), difference


def pretrained(seed, data):
    """The network after `--pretrain_epochs` and the unpruned baseline, each made once."""
    x_train, y_train, _, _ = data
    snapshot = os.path.join(FLAGS.run_dir, f"{FLAGS.network}_s{seed}_pretrained.pt")
    if os.path.exists(snapshot) and os.path.exists(run_path(seed, "unpruned", 1)):
        return torch.load(snapshot, weights_only=False)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build(FLAGS.network)
    init_like_keras(model)
    base_params = count_params(model)
    base_macs = int(tp.utils.count_ops_and_params(model, x_train[:1])[0])
    optimizer = torch.optim.Adam(model.parameters(), lr=FLAGS.learning_rate)
    began = time.time()
    if FLAGS.same_start:
        pretrain_seconds, start_difference = load_keras_start(model, seed)
    else:
        for _ in range(FLAGS.pretrain_epochs):
            train_epoch(model, optimizer, x_train, y_train, rng)
        pretrain_seconds, start_difference = time.time() - began, None
    state = {"model": copy.deepcopy(model), "rng": copy.deepcopy(rng),
             "pretrain_seconds": pretrain_seconds, "base_params": base_params,
             "start_difference": start_difference}
    torch.save(state, snapshot + ".tmp")
    os.replace(snapshot + ".tmp", snapshot)
    for _ in range(FLAGS.epochs - FLAGS.pretrain_epochs):
        train_epoch(model, optimizer, x_train, y_train, rng)
    save_run({"tool": "torch_pruning", "method": "unpruned", "network": FLAGS.network,
              "seed": seed, "ratio": 1, "params": base_params, "flops": 2 * base_macs,
              "macs": base_macs, "accuracy": accuracy(model, data),
              # Keras' pretraining time where the twin started from its weights.
              "seconds": time.time() - began + (pretrain_seconds if FLAGS.same_start else 0),
              "torch": torch.__version__, "torch_pruning": TP_VERSION})
    return state


def run_seed(seed, data):
    x_train, y_train, _, _ = data
    example = x_train[:1]
    fine_tune = FLAGS.epochs - FLAGS.pretrain_epochs - FLAGS.steps
    state = None
    for variant in FLAGS.variants:
        global_pruning = variant == "global"
        method = "group_magnitude_" + variant
        for ratio in (float(r) for r in FLAGS.ratios):
            if os.path.exists(run_path(seed, method, ratio)):
                continue
            state = state or pretrained(seed, data)
            began = time.time()
            model = copy.deepcopy(state["model"])
            rng = copy.deepcopy(state["rng"])
            goal = state["base_params"] / ratio
            channel_ratio = ratio_for(model, example, goal, global_pruning)
            search_seconds = time.time() - began
            pruner = make_pruner(model, example, channel_ratio, global_pruning)
            for _ in range(FLAGS.steps):
                pruner.step()
                optimizer = torch.optim.Adam(model.parameters(), lr=FLAGS.learning_rate)
                train_epoch(model, optimizer, x_train, y_train, rng)
            for _ in range(max(0, fine_tune)):
                train_epoch(model, optimizer, x_train, y_train, rng)
            macs = int(tp.utils.count_ops_and_params(model, example)[0])
            params = count_params(model)
            widths = [m.out_channels if isinstance(m, nn.Conv2d) else m.out_features
                      for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
            save_run({
                "tool": "torch_pruning", "method": method, "network": FLAGS.network,
                "seed": seed, "ratio": ratio, "params": params, "flops": 2 * macs, "macs": macs,
                "target_params": int(goal), "accuracy": accuracy(model, data),
                "seconds": state["pretrain_seconds"] + time.time() - began - search_seconds,
                "search_seconds": search_seconds, "channel_ratio": channel_ratio,
                "widths": widths, "torch": torch.__version__, "torch_pruning": TP_VERSION,
            })
    if not os.path.exists(run_path(seed, "unpruned", 1)):
        pretrained(seed, data)  # the unpruned baseline alone


def main(argv):
    del argv
    if FLAGS.threads:
        torch.set_num_threads(FLAGS.threads)
    data = np.load(FLAGS.data)
    to_nchw = lambda a: torch.tensor(np.transpose(a, (0, 3, 1, 2)).copy())  # noqa: E731
    arrays = (to_nchw(data["x_train"]), torch.tensor(data["y_train"], dtype=torch.long),
              to_nchw(data["x_test"]), torch.tensor(data["y_test"], dtype=torch.long))
    os.makedirs(FLAGS.run_dir, exist_ok=True)
    os.makedirs(FLAGS.records_dir or FLAGS.run_dir, exist_ok=True)
    for seed in (int(s) for s in FLAGS.seeds):
        run_seed(seed, arrays)


if __name__ == "__main__":
    app.run(main)
