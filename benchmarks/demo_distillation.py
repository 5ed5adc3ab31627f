"""Benchmark: the demo with and without distillation, over seeds.

Runs `examples/demo.py` (the README's first command: a small CNN on 10,000
Fashion-MNIST images, 6 epochs, `"magnitude"` pruning of 75 % of the hidden
units during fit at the end of epochs 1 to 3) once per seed with plain
fine-tuning and once with `--distill` (`darn.prepare(..., distill=True)`,
`keras.distillation`: the pruned model also learns from the outputs of the
model given to `prepare`, which in the demo is the untrained network, the
baseline's twin before training), each in a process of its own. Recorded per run, from
the demo's `results.json`: the test accuracy of the unpruned baseline, of
the pruned model, and of the same widths trained from scratch, and the wall
time. The summary gives the means over seeds and, per seed, what
distillation changed.

Each finished run writes `<runs>/s<seed>_<arm>.json` in a committed
directory, `benchmarks/results/demo_distillation/`; a run whose file is
there is not run again, so an interrupted invocation continues. Cost on 2
CPU cores with nothing else running: about 3.5 minutes per run, 7 minutes
per seed (both arms); the default 3 seeds about 21 minutes.

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

ARMS = {"fine_tune": [], "distill": ["--distill"]}


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

    gains = [records[(s, "distill")]["pruned_accuracy"] - records[(s, "fine_tune")]["pruned_accuracy"]
             for s in paired]
    summary = {
        "config": {"demo": "examples/demo.py defaults", "seeds": list(harness.seeds()),
                   "machine": harness.describe_machine()},
        "seeds_with_both_arms": paired,
        "mean_pruned_accuracy": {arm: mean(arm, "pruned_accuracy") for arm in ARMS},
        "mean_baseline_accuracy": mean("fine_tune", "baseline_accuracy"),
        "mean_from_scratch_accuracy": mean("fine_tune", "from_scratch_accuracy"),
        "distillation_gain_per_seed": gains,
        "mean_distillation_gain": float(np.mean(gains)) if gains else None,
        "mean_seconds": {arm: mean(arm, "seconds") for arm in ARMS},
        "records": list(records.values()),
    }
    prefix = harness.result_prefix()
    harness.write_json(prefix + ".json", summary)
    rows = [[s, f"{records[(s, 'fine_tune')]['baseline_accuracy']:.4f}",
             f"{records[(s, 'fine_tune')]['pruned_accuracy']:.4f}",
             f"{records[(s, 'distill')]['pruned_accuracy']:.4f}",
             f"{records[(s, 'fine_tune')]['from_scratch_accuracy']:.4f}",
             f"{records[(s, 'fine_tune')]['seconds']:.0f} / {records[(s, 'distill')]['seconds']:.0f}"]
            for s in paired]
    if paired:
        rows.append(["mean", f"{summary['mean_baseline_accuracy']:.4f}",
                     f"{summary['mean_pruned_accuracy']['fine_tune']:.4f}",
                     f"{summary['mean_pruned_accuracy']['distill']:.4f}",
                     f"{summary['mean_from_scratch_accuracy']:.4f}", ""])
    gain = summary["mean_distillation_gain"]
    lines = [
        "# The demo with and without distillation",
        "",
        "`examples/demo.py` with its defaults (a small CNN, 10,000 Fashion-MNIST training images, 6 "
        "epochs, `\"magnitude\"` pruning of 75 % of the hidden units during fit), once with plain "
        "fine-tuning and once with `--distill` (`distill=True`: the pruned model also learns from "
        "the outputs of the model given to `darn.prepare`, which in the demo is the untrained "
        "network, so the teacher passes on no training, only its outputs at initialization), per "
        "seed; test accuracy on the 10,000 test images. The from-scratch "
        "control (the pruned widths trained from a fresh start for the same epochs) is the "
        f"fine-tuning run's. {summary['config']['machine']}; seconds are indicative (other work "
        "shared the machine).",
        "",
        *harness.markdown_table(["seed", "unpruned", "pruned, fine-tuned", "pruned, distilled",
                                 "from scratch", "seconds (fine-tuned / distilled)"], rows),
        "",
        (f"Distillation changes the pruned model's accuracy by {100 * gain:+.2f} points on average "
         f"over {len(paired)} seeds (per seed: "
         + ", ".join(f"{100 * g:+.2f}" for g in gains) + ").") if gains else "No seed has both arms yet.",
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
