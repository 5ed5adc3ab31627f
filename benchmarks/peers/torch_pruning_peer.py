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

Set-up (once): `bash benchmarks/peers/setup_torch_pruning.sh` (default
`~/.venvs/torch-pruning`). Run (normally by vs_torch_pruning.py):

    ~/.venvs/torch-pruning/bin/python benchmarks/peers/torch_pruning_peer.py \\
        --data=split.npz --output=peer.json --network=plain --ratios=4,16 --seeds=0
"""

import copy
import json
import time

import numpy as np
import torch
import torch.nn as nn
import torch_pruning as tp
from absl import app
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string("data", None, "npz with x_train, y_train, x_test, y_test (NHWC floats).")
flags.DEFINE_string("output", None, "JSON file to write.")
flags.DEFINE_enum("network", "plain", ["plain", "residual", "separable"], "Architecture.")
flags.DEFINE_list("ratios", ["2", "4", "8", "16"], "Parameter reduction factors.")
flags.DEFINE_list("seeds", ["0"], "Seeds.")
flags.DEFINE_integer("epochs", 8, "Epochs in all.")
flags.DEFINE_integer("pretrain_epochs", 3, "Epochs before the first pruning step.")
flags.DEFINE_integer("steps", 5, "Pruning steps, each followed by one epoch.")
flags.DEFINE_integer("batch_size", 256, "Batch size.")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
flags.DEFINE_bool("global_pruning", False, "Torch-Pruning's global ranking.")
flags.DEFINE_integer("threads", 0, "torch threads (0: torch's default).")
flags.mark_flags_as_required(["data", "output"])


class Residual(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(y)))


def conv_bn(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01),
            nn.ReLU()]


def separable(cin, cout):
    return [nn.Conv2d(cin, cin, 3, padding=1, groups=cin), nn.Conv2d(cin, cout, 1), nn.ReLU()]


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
    return int(sum(p.numel() for p in model.parameters()))


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


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        correct = sum(
            int((model(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum())
            for i in range(0, len(x), 1000)
        )
    return correct / len(x)


def make_pruner(model, example, ratio):
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    return tp.pruner.BasePruner(
        model, example, importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=ratio, iterative_steps=FLAGS.steps, ignored_layers=[last],
        global_pruning=FLAGS.global_pruning)


def params_after(model, example, ratio):
    trial = copy.deepcopy(model)
    pruner = make_pruner(trial, example, ratio)
    for _ in range(FLAGS.steps):
        pruner.step()
    return count_params(trial)


def ratio_for(model, example, goal):
    """The smallest channel pruning ratio that brings the parameters to `goal` or below."""
    low, high = 0.0, 0.99
    if params_after(model, example, high) > goal:
        return high
    for _ in range(14):
        middle = (low + high) / 2
        if params_after(model, example, middle) <= goal:
            high = middle
        else:
            low = middle
    return high


def run_seed(seed, data):
    x_train, y_train, x_test, y_test = data
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build(FLAGS.network)
    init_like_keras(model)
    example = x_train[:1]
    base_params = count_params(model)
    base_flops = int(tp.utils.count_ops_and_params(model, example)[0])
    optimizer = torch.optim.Adam(model.parameters(), lr=FLAGS.learning_rate)
    began = time.time()
    for _ in range(FLAGS.pretrain_epochs):
        train_epoch(model, optimizer, x_train, y_train, rng)
    pretrain_seconds = time.time() - began
    snapshot = copy.deepcopy(model)
    snapshot_rng = copy.deepcopy(rng)
    for _ in range(FLAGS.epochs - FLAGS.pretrain_epochs):
        train_epoch(model, optimizer, x_train, y_train, rng)
    rows = [{"tool": "torch_pruning", "method": "unpruned", "network": FLAGS.network,
             "seed": seed, "ratio": 1, "params": base_params, "flops": base_flops,
             "accuracy": accuracy(model, x_test, y_test), "seconds": time.time() - began}]
    print(json.dumps(rows[-1]), flush=True)
    fine_tune = FLAGS.epochs - FLAGS.pretrain_epochs - FLAGS.steps
    for ratio in (float(r) for r in FLAGS.ratios):
        began = time.time()
        model = copy.deepcopy(snapshot)
        rng = copy.deepcopy(snapshot_rng)
        channel_ratio = ratio_for(model, example, base_params / ratio)
        search_seconds = time.time() - began
        pruner = make_pruner(model, example, channel_ratio)
        for _ in range(FLAGS.steps):
            pruner.step()
            optimizer = torch.optim.Adam(model.parameters(), lr=FLAGS.learning_rate)
            train_epoch(model, optimizer, x_train, y_train, rng)
        for _ in range(max(0, fine_tune)):
            train_epoch(model, optimizer, x_train, y_train, rng)
        flops, params = tp.utils.count_ops_and_params(model, example)
        widths = [m.out_channels if isinstance(m, nn.Conv2d) else m.out_features
                  for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        rows.append({
            "tool": "torch_pruning",
            "method": "group_magnitude_" + ("global" if FLAGS.global_pruning else "uniform"),
            "network": FLAGS.network, "seed": seed, "ratio": ratio, "params": int(params),
            "flops": int(flops), "accuracy": accuracy(model, x_test, y_test),
            "seconds": pretrain_seconds + time.time() - began - search_seconds,
            "search_seconds": search_seconds, "channel_ratio": channel_ratio, "widths": widths,
        })
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv):
    del argv
    if FLAGS.threads:
        torch.set_num_threads(FLAGS.threads)
    data = np.load(FLAGS.data)
    to_nchw = lambda a: torch.tensor(np.transpose(a, (0, 3, 1, 2)).copy())  # noqa: E731
    arrays = (to_nchw(data["x_train"]), torch.tensor(data["y_train"], dtype=torch.long),
              to_nchw(data["x_test"]), torch.tensor(data["y_test"], dtype=torch.long))
    rows = []
    for seed in (int(s) for s in FLAGS.seeds):
        rows += run_seed(seed, arrays)
    with open(FLAGS.output, "w") as f:
        json.dump({"torch": torch.__version__, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    app.run(main)
