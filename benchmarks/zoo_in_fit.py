"""Benchmark: every `keras.applications` architecture pruned during `fit` to half its FLOPs.

For each architecture (random weights, 10 classes, 32x32x3 inputs; 75x75 for
InceptionV3 and InceptionResNetV2, 71x71 for Xception, the smallest they
accept; random BatchNormalization statistics, scales and biases, so that no
unit is trivially dead): `darn.prepare(model, "magnitude",
darn.Target(flops=0.5))`, one epoch of `fit` on 4 random images, then
`callback.finish()`. Recorded: the FLOPs of the finished model (a share of the
original), whether the target was met (`Result.target_check()`: at or below
it, within 2 %), whether the model is plain Keras (no keras_darn class in its
saved config), the largest difference between the masked model's outputs and
the finished model's (relative to the largest output), the wall time and the
peak memory of the process. Random data: these are exactness and coverage
figures, never accuracy.

Each architecture runs in a process of its own (so memory is measured per
architecture and one that runs out of memory does not stop the others) and
writes `<runs>/<Name>.json` in a committed directory,
`benchmarks/results/zoo_in_fit/`; an architecture whose file is there is not
run again, so an interrupted invocation continues where it stopped. The
summary is `<output_dir>/<name>.{json,md}`.

Cost on 2 CPU cores with nothing else running: 1 to 5 minutes per
architecture for most, 10 to 20 minutes for the largest (EfficientNetB7,
EfficientNetV2L, NASNetLarge, ConvNeXtXLarge); all 40 take about 3 hours, so
run them over several invocations with `--architectures` (`--max_minutes`
stops starting new ones after that long).

    nice python benchmarks/zoo_in_fit.py --architectures=ResNet50,VGG16
    python benchmarks/zoo_in_fit.py --report_only       # summarise what is there
"""

import json
import os
import resource
import subprocess
import sys
import time
import zipfile

import harness  # noqa: I001  (quiets TensorFlow before it loads)

from absl import app
from absl import flags

sys.path.insert(0, os.path.join(harness.REPO_DIR, "tests"))
from support import model_zoo  # noqa: E402  (the architectures as the test suite builds them)

FLAGS = flags.FLAGS
harness.define_output_flags("zoo_in_fit")
flags.DEFINE_list("architectures", model_zoo.APPLICATIONS, "The keras.applications names to run.")
flags.DEFINE_string("runs_dir", os.path.join(harness.RESULTS_DIR, "zoo_in_fit"),
                    "Where each architecture's result is written and read (committed).")
flags.DEFINE_string("one", None, "Run this one architecture in this process (used by the driver).")
flags.DEFINE_float("max_minutes", 85.0, "Start no new architecture after this many minutes.")
flags.DEFINE_integer("timeout_minutes", 40, "Stop one architecture's process after this many minutes.")
flags.DEFINE_boolean("report_only", False, "Only summarise the results already written.")
GOAL = 0.5


def run_path(name):
    return os.path.join(FLAGS.runs_dir, f"{name}.json")


def saved_config_names_keras_darn(model, directory):
    path = os.path.join(directory, "finished.keras")
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        return "keras_darn" in archive.read("config.json").decode()


def run_one(name):
    """Prunes `name` during fit and writes its result file."""
    import tempfile

    import keras
    import numpy as np

    import keras_darn as darn

    began = time.perf_counter()
    model = model_zoo.application(name)
    x = model_zoo.sample_input(model, batch=4)
    pruned, callback = darn.prepare(model, "magnitude", darn.Target(flops=GOAL))
    pruned.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    pruned.fit(x, np.arange(4), epochs=1, batch_size=4, verbose=0, callbacks=[callback])
    result = callback.finish()
    seconds = time.perf_counter() - began
    small = result.model
    with tempfile.TemporaryDirectory() as directory:
        names_keras_darn = saved_config_names_keras_darn(small, directory)
    check = result.target_check()
    diff32, diff64, by_layer64 = model_zoo.masked_vs_finished(name, pruned, small, x)
    record = {
        "architecture": name, "input_shape": list(model.inputs[0].shape[1:]),
        "original_flops": darn.count_flops(model),
        "flops_share": darn.count_flops(small) / darn.count_flops(model),
        "target_met": bool(check["met"]),
        "plain_keras": not names_keras_darn
        and all(type(layer).__module__.startswith("keras.") for layer in small._flatten_layers()),
        "masked_vs_finished": diff32, "masked_vs_finished_float64": diff64,
        "masked_vs_finished_float64_by_layer": by_layer64,
        "left_out": result.notes, "seconds": seconds,
        "peak_memory_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }
    harness.write_json(run_path(name), record)
    print(json.dumps(record), flush=True)


def run_in_process(name):
    """Runs `run_one(name)` in a child process; records a failure (out of memory, timeout) as a result."""
    command = [sys.executable, os.path.abspath(__file__), f"--one={name}", f"--runs_dir={FLAGS.runs_dir}"]
    print(" ".join(command), flush=True)
    began = time.perf_counter()
    try:
        completed = subprocess.run(command, timeout=60 * FLAGS.timeout_minutes, capture_output=True, text=True)
        failure = None if completed.returncode == 0 else (
            f"exit code {completed.returncode}" + (" (killed: out of memory)" if completed.returncode in (-9, 137)
                                                   else "") + ": " + completed.stderr.strip()[-600:])
    except subprocess.TimeoutExpired:
        failure = f"stopped after {FLAGS.timeout_minutes} minutes"
    if failure is not None:
        harness.write_json(run_path(name), {"architecture": name, "failure": failure,
                                            "seconds": time.perf_counter() - began})
        print(name, failure, flush=True)


# Node by node in float64 (rounding not carried from layer to layer), a
# function-preserving removal differs by rounding alone.
BY_LAYER_TOLERANCE = 1e-10


def _exact(record):
    """Whether the finished model computes the masked model's function: its
    float32 outputs within 1e-4, or, where the net amplifies rounding end to
    end, every node within `BY_LAYER_TOLERANCE` in float64."""
    if record["masked_vs_finished"] <= 1e-4:
        return True
    by_layer = record.get("masked_vs_finished_float64_by_layer")
    return by_layer is not None and by_layer <= BY_LAYER_TOLERANCE


def summarise():
    records = [harness.read_json(run_path(n)) for n in model_zoo.APPLICATIONS if os.path.exists(run_path(n))]
    done = [r for r in records if "failure" not in r]
    summary = {
        "config": {"method": "magnitude", "target": {"flops": GOAL}, "epochs": 1, "examples": 4,
                   "machine": harness.describe_machine()},
        "architectures": len(model_zoo.APPLICATIONS), "run": len(records),
        "plain_met_exact": sum(r["plain_keras"] and r["target_met"] and _exact(r) for r in done),
        "not_exact": [r["architecture"] for r in done if not _exact(r)],
        "records": records,
    }
    prefix = harness.result_prefix()
    harness.write_json(prefix + ".json", summary)
    rows = []
    for name in model_zoo.APPLICATIONS:
        record = next((r for r in records if r["architecture"] == name), None)
        if record is None:
            rows.append([name, "not run", "", "", "", "", ""])
        elif "failure" in record:
            rows.append([name, "failed: " + record["failure"].splitlines()[0][:80], "", "", "", "", ""])
        else:
            float64 = record.get("masked_vs_finished_float64")
            by_layer = record.get("masked_vs_finished_float64_by_layer")
            rows.append([name, f"{record['flops_share']:.4f}", "met" if record["target_met"] else "missed",
                         "yes" if record["plain_keras"] else "no", f"{record['masked_vs_finished']:.1e}"
                         + (f" (float64: {float64:.1e} end to end, {by_layer:.1e} node by node)"
                            if by_layer is not None else ""),
                         f"{record['seconds']:.0f}", f"{record['peak_memory_gib']:.1f}"])
    lines = [
        "# Every keras.applications architecture pruned during fit to half its FLOPs",
        "",
        "Random weights and random BatchNormalization statistics, 32x32x3 inputs (75x75 for the "
        "Inception nets, 71x71 for Xception), 10 classes; `darn.prepare(model, \"magnitude\", "
        "darn.Target(flops=0.5))`, one epoch of `fit` on 4 random images, `callback.finish()`. "
        "Target met: at or below 0.5 and within 2 % of it. Masked vs finished: the largest "
        "difference between the two models' outputs, relative to the largest output; where it "
        "is above 1e-4 in float32 (a deep untrained net with random normalization statistics "
        "amplifies rounding), the same removal is redone in float64 and compared end to end and "
        "node by node (every node of the finished model fed the masked model's inputs, so "
        "rounding is not carried from layer to layer; exact: within 1e-10 at every node). "
        "Seconds and memory are "
        "indicative (other work shared the machine). "
        f"{summary['config']['machine']}.",
        "",
        f"{summary['plain_met_exact']} of {summary['architectures']} architectures out as a plain Keras "
        f"model at the target with the masked model's outputs ({summary['run']} run).",
        "",
        *harness.markdown_table(["architecture", "FLOPs reached (share)", "target", "plain Keras model",
                                 "masked vs finished", "seconds", "peak memory (GiB)"], rows),
    ]
    harness.write_markdown(prefix + ".md", lines)
    print("\n".join(lines))


def main(argv):
    del argv
    if FLAGS.one:
        run_one(FLAGS.one)
        return
    began = time.perf_counter()
    unknown = [n for n in FLAGS.architectures if n not in model_zoo.APPLICATIONS]
    if unknown:
        raise app.UsageError(f"--architectures: unknown {unknown}; allowed: {model_zoo.APPLICATIONS}")
    for name in [] if FLAGS.report_only else FLAGS.architectures:
        if os.path.exists(run_path(name)):
            continue
        if time.perf_counter() - began > 60 * FLAGS.max_minutes:
            print(f"--max_minutes={FLAGS.max_minutes} reached; run again to continue.", flush=True)
            break
        run_in_process(name)
    summarise()


if __name__ == "__main__":
    app.run(main)
