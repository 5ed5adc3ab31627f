"""Benchmark: the demo with and without distillation, over seeds.

Runs `examples/demo.py` (the README's first command: a small CNN on 10,000
Fashion-MNIST images, 6 epochs, `"magnitude"` pruning of 75 % of the hidden
units during fit at the end of epochs 1 to 3) once per seed with plain
fine-tuning, once with `--distill` (`darn.prepare(..., distill=True)`,
`keras.distillation`: the pruned model also learns from the outputs of the
model given to `prepare`, which in the demo is the untrained network, the
baseline's twin before training) and once with `--distill
--teacher=baseline` (`distill=baseline`: the trained baseline is the
teacher), each in a process of its own. Recorded per run, from
the demo's `results.json`: the test accuracy of the unpruned baseline, of
the pruned model, and of the same widths trained from scratch, and the wall
time. The summary gives the means over seeds and, per seed, what
distillation changed.

Each finished run writes `<runs>/s<seed>_<arm>.json` in a committed
directory, `benchmarks/results/demo_distillation/`; a run whose file is
there is not run again, so an interrupted invocation continues. Cost on 2
CPU cores with nothing else running: about 3.5 minutes per run, 11 minutes
per seed (three arms); the default 3 seeds about 32 minutes.

    nice python benchmarks/demo_distillation.py              # the committed result
    python benchmarks/demo_distillation.py --report_only     # summarise what is there
"""

import json
import os
import subprocess
import sys
import tempfile

import harness  # noqa: I001  (quiets TensorFlow before it loads)
import numpy as np
from absl import app
from absl import flags

FLAGS = flags.FLAGS
harness.define_output_flags("demo_distillation")
harness.define_seeds_flag([0, 1, 2])
flags.DEFINE_string("runs_dir", os.path.join(harness.RESULTS_DIR, "demo_distillation"),
                    "Where each run's result is written and read (committed).")
flags.DEFINE_boolean("report_only", False, "Only summarise the runs already written.")

ARMS = {"fine_tune": [], "distill": ["--distill"],
        "distill_baseline": ["--distill", "--teacher=baseline"]}
DISTILLED = ("distill", "distill_baseline")


def run_path(seed, arm):
    return os.path.join(FLAGS.runs_dir, f"s{seed}_{arm}.json")


def run_demo(seed, arm):
    """Runs the demo for one seed and arm and writes its record."""
    with tempfile.TemporaryDirectory() as output_dir:
        command = [sys.executable, os.path.join(harness.REPO_DIR, "examples", "demo.py"),
                   f"--seed={seed}", f"--output_dir={output_dir}", "--latency_repeats=20",
                   *ARMS[arm]]
        print(" ".join(command), flush=True)
        subprocess.run(command, check=True, cwd=harness.REPO_DIR,
                       env={**os.environ, "PYTHONPATH": harness.REPO_DIR})
        with open(os.path.join(output_dir, "results.json")) as f:
            results = json.load(f)
    record = {
        "seed": seed, "arm": arm, "distilled": results["distilled"],
        "dataset": results["dataset"], "train_examples": results["train_examples"],
        "epochs": results["epochs"], "target_fraction": results["target_fraction"],
        "baseline_accuracy": results["baseline"]["test_accuracy"],
        "pruned_accuracy": results["pruned"]["test_accuracy"],
        "from_scratch_accuracy": results["from_scratch"]["test_accuracy"],
        "pruned_params": results["pruned"]["params"],
        "seconds": results["seconds"],
    }
    harness.write_json(run_path(seed, arm), record)
    return record


def summarise():
    records = {(s, a): harness.read_json(run_path(s, a)) for s in harness.seeds() for a in ARMS
               if os.path.exists(run_path(s, a))}
    paired = [s for s in harness.seeds() if all((s, a) in records for a in ARMS)]

    def mean(arm, key):
        values = [records[(s, arm)][key] for s in paired]
        return float(np.mean(values)) if values else None

    gains = {arm: [records[(s, arm)]["pruned_accuracy"] - records[(s, "fine_tune")]["pruned_accuracy"]
                   for s in paired] for arm in DISTILLED}
    summary = {
        "config": {"demo": "examples/demo.py defaults", "seeds": list(harness.seeds()),
                   "machine": harness.describe_machine()},
        "seeds_with_every_arm": paired,
        "mean_pruned_accuracy": {arm: mean(arm, "pruned_accuracy") for arm in ARMS},
        "mean_baseline_accuracy": mean("fine_tune", "baseline_accuracy"),
        "mean_from_scratch_accuracy": mean("fine_tune", "from_scratch_accuracy"),
        "distillation_gain_per_seed": gains,
        "mean_distillation_gain": {arm: float(np.mean(g)) if g else None for arm, g in gains.items()},
        "mean_seconds": {arm: mean(arm, "seconds") for arm in ARMS},
        "records": list(records.values()),
    }
    prefix = harness.result_prefix()
    harness.write_json(prefix + ".json", summary)
    rows = [[s, f"{records[(s, 'fine_tune')]['baseline_accuracy']:.4f}",
             *[f"{records[(s, arm)]['pruned_accuracy']:.4f}" for arm in ARMS],
             f"{records[(s, 'fine_tune')]['from_scratch_accuracy']:.4f}"]
            for s in paired]
    if paired:
        rows.append(["mean", f"{summary['mean_baseline_accuracy']:.4f}",
                     *[f"{summary['mean_pruned_accuracy'][arm]:.4f}" for arm in ARMS],
                     f"{summary['mean_from_scratch_accuracy']:.4f}"])
    findings = [
        f"Distillation from {teacher} changes the pruned model's accuracy by "
        f"{100 * summary['mean_distillation_gain'][arm]:+.2f} points on average over {len(paired)} "
        "seeds (per seed: " + ", ".join(f"{100 * g:+.2f}" for g in gains[arm]) + ")."
        for arm, teacher in (("distill", "the untrained network given to `prepare`"),
                             ("distill_baseline", "the trained baseline"))
    ] if paired else ["No seed has every arm yet."]
    lines = [
        "# The demo with and without distillation",
        "",
        "`examples/demo.py` with its defaults (a small CNN, 10,000 Fashion-MNIST training images, 6 "
        "epochs, `\"magnitude\"` pruning of 75 % of the hidden units during fit), per seed: with plain "
        "fine-tuning; with `--distill` (`distill=True`: the pruned model also learns from the outputs "
        "of the model given to `darn.prepare`, which in the demo is the untrained network, so that "
        "teacher passes on no training, only its outputs at initialization); and with `--distill "
        "--teacher=baseline` (`distill=baseline`: the trained baseline is the teacher). Test "
        "accuracy on the 10,000 test images. The from-scratch control (the pruned widths trained "
        "from a fresh start for the same epochs) is the fine-tuning run's. "
        f"{summary['config']['machine']}.",
        "",
        *harness.markdown_table(["seed", "unpruned", "pruned, fine-tuned", "pruned, distilled (untrained teacher)",
                                 "pruned, distilled (trained baseline)", "from scratch"], rows),
        "",
        *findings,
    ]
    harness.write_markdown(prefix + ".md", lines)
    print("\n".join(lines))


def main(argv):
    del argv
    if not FLAGS.report_only:
        for seed in harness.seeds():
            for arm in ARMS:
                if not os.path.exists(run_path(seed, arm)):
                    run_demo(seed, arm)
    summarise()


if __name__ == "__main__":
    app.run(main)
