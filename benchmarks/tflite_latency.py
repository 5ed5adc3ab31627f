"""TFLite latency: structured pruning (keras_darn) against sparsity (tfmot), where latency is real.

`keras.applications.MobileNetV2` and `ResNet50` at 224x224 (`weights=None`:
random weights are fine for latency, never for accuracy), pruned by
keras_darn's default pruner (`darn.resize(model, "magnitude",
darn.Target(flops=1 / r), epochs=0)`, data-free, one global ranking) to `r`
times fewer FLOPs, with and without `round_to=8`; converted to TFLite float
and int8 (full-integer, calibrated on random images); and
tensorflow-model-optimization's 50 % / 75 % sparse versions of the same
architectures (`peers/tfmot_sparse_peer.py`, in its own Keras 2 environment,
`prune_low_magnitude` + `strip_pruning`). Every `.tflite` file is timed by
the same interpreter code in this one process: batch 1, LiteRT's default
XNNPACK delegate, 1 and 2 threads, all models interleaved round by round so
that a busy machine slows them all alike; the median of the rounds is
reported, with file sizes (raw and gzipped).

Example:

    python benchmarks/tflite_latency.py --architectures=mobilenet_v2 --repeats=20
    python benchmarks/tflite_latency.py --quick      # 96x96, few rounds, under results/runs/

Writes `<output_dir>/tflite_latency.{json,md}`.
"""

import gzip
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
from keras_darn.export import tflite as tflite_export

FLAGS = flags.FLAGS
harness.define_output_flags("tflite_latency")
harness.define_quick_flag()
flags.DEFINE_list("architectures", ["mobilenet_v2", "resnet50"], "keras.applications models.")
flags.DEFINE_list("flops_ratios", ["2", "4"], "FLOP reduction factors.")
flags.DEFINE_list("round_to", ["1", "8"], "round_to values of the pruned models.")
flags.DEFINE_list("quantizations", ["float", "int8"], "TFLite variants.")
flags.DEFINE_list("threads", ["1", "2"], "Interpreter threads.")
flags.DEFINE_integer("repeats", 50, "Timed rounds (every model once per round).")
flags.DEFINE_integer("warmup", 3, "Untimed rounds first.")
flags.DEFINE_integer("input_size", 224, "Image side.")
flags.DEFINE_integer("calibration", 8, "Random images for int8 calibration.")
flags.DEFINE_string("tfmot_python", "",
                    "Python of the tfmot (Keras 2) environment (see benchmarks/peer_tfmot.py); "
                    "empty: skip tfmot.")
flags.DEFINE_list("sparsities", ["0.5", "0.75"], "tfmot sparsities.")

APPLICATIONS = {"mobilenet_v2": "MobileNetV2", "resnet50": "ResNet50"}


def build(architecture, size):
    keras.utils.set_random_seed(0)
    return getattr(keras.applications, APPLICATIONS[architecture])(
        weights=None, input_shape=(size, size, 3), classes=1000)


def convert(model, quantization, calibration):
    if quantization == "float":
        return tflite_export.to_tflite(model)
    return tflite_export.to_tflite(model, quantization="int8", representative_data=calibration)


def make_models(work, calibration):
    """`[{"name", "architecture", "kind", ..., "path"}]`: every .tflite file to time."""
    entries = []
    for architecture in FLAGS.architectures:
        base = build(architecture, FLAGS.input_size)
        variants = [("unpruned", base, {})]
        for ratio in (float(r) for r in FLAGS.flops_ratios):
            for round_to in (int(r) for r in FLAGS.round_to):
                began = time.time()
                small = darn.resize(base, "magnitude", darn.Target(flops=1.0 / ratio),
                                    epochs=0, round_to=round_to).model
                variants.append((f"keras_darn {ratio:g}x fewer FLOPs, round_to={round_to}",
                                 small, {"flops_ratio": ratio, "round_to": round_to,
                                         "pruning_seconds": time.time() - began}))
                print(variants[-1][0], darn.count_flops(small), flush=True)
        for label, model, extra in variants:
            for quantization in FLAGS.quantizations:
                data = convert(model, quantization, calibration)
                path = os.path.join(work, f"{architecture}_{len(entries)}_{quantization}.tflite")
                with open(path, "wb") as f:
                    f.write(data)
                entries.append({"architecture": architecture, "name": label, "tool": (
                    "keras" if label == "unpruned" else "keras_darn"),
                    "quantization": quantization, "params": darn.count_params(model),
                    "flops": darn.count_flops(model), "path": path, **extra})
        if FLAGS.tfmot_python:
            output = os.path.join(work, f"tfmot_{architecture}.json")
            subprocess.run([FLAGS.tfmot_python, os.path.join(harness.BENCHMARKS_DIR, "peers",
                                                             "tfmot_sparse_peer.py"),
                            f"--architecture={APPLICATIONS[architecture]}",
                            f"--input_size={FLAGS.input_size}",
                            f"--sparsities={','.join(FLAGS.sparsities)}",
                            f"--quantizations={','.join(FLAGS.quantizations)}",
                            f"--calibration={FLAGS.calibration}", f"--output={output}",
                            f"--tflite_dir={work}"], check=True,
                           env={**os.environ, "TF_USE_LEGACY_KERAS": "1"})
            for row in harness.read_json(output)["models"]:
                entries.append({"architecture": architecture, "tool": "tfmot", **row})
    for entry in entries:
        with open(entry["path"], "rb") as f:
            data = f.read()
        entry["bytes"] = len(data)
        entry["gzip_bytes"] = len(gzip.compress(data, 6))
    return entries


def time_interleaved(entries, threads):
    """Median seconds of one batch-1 invoke per entry, all interleaved round by round."""
    runners = []
    for entry in entries:
        interpreter = tflite_export.tflite_interpreter(entry["path"], num_threads=threads)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        dtype = detail["dtype"]
        sample = np.zeros(detail["shape"], dtype=dtype)
        interpreter.set_tensor(detail["index"], sample)
        runners.append(interpreter)
    times = [[] for _ in entries]
    for round_index in range(FLAGS.warmup + FLAGS.repeats):
        order = list(range(len(entries)))
        if round_index % 2:
            order.reverse()
        for i in order:
            start = time.perf_counter()
            runners[i].invoke()
            elapsed = time.perf_counter() - start
            if round_index >= FLAGS.warmup:
                times[i].append(elapsed)
    return [statistics.median(t) for t in times]


def write(entries, meta):
    prefix = harness.result_prefix()
    base = {(e["architecture"], e["quantization"]): e for e in entries if e["name"] == "unpruned"}
    rows = []
    for e in entries:
        reference = base[(e["architecture"], e["quantization"])]
        cells = [e["architecture"], e["quantization"], e["name"], f"{e['params']:,}",
                 f"{e['flops'] / 1e6:.0f} M" if e.get("flops") else "",
                 f"{reference['flops'] / e['flops']:.2f}x" if e.get("flops") else ""]
        for threads in FLAGS.threads:
            ms = 1000 * e[f"seconds_{threads}"]
            speedup = reference[f"seconds_{threads}"] / e[f"seconds_{threads}"]
            cells += [f"{ms:.1f}", f"{speedup:.2f}x"]
        cells += [f"{e['bytes'] / 1e6:.2f}", f"{e['gzip_bytes'] / 1e6:.2f}"]
        rows.append(cells)
    header = ["architecture", "TFLite", "model", "params", "FLOPs", "fewer FLOPs"]
    for threads in FLAGS.threads:
        header += [f"ms, {threads} thread(s)", "speed-up"]
    header += ["MB", "MB gzip"]
    table = harness.markdown_table(header, rows)
    harness.write_json(prefix + ".json", {"meta": meta, "models": entries})
    harness.write_markdown(prefix + ".md", [
        "# TFLite latency: structured pruning vs sparsity", "",
        f"Batch 1, XNNPACK (LiteRT default), median of {FLAGS.repeats} interleaved rounds "
        f"after {FLAGS.warmup} warm-up rounds, {FLAGS.input_size}x{FLAGS.input_size} inputs, "
        f"random weights. Machine: {meta['machine']}.", "", *table])
    print("\n".join(table))


def main(argv):
    del argv
    harness.apply_quick({"architectures": ["mobilenet_v2"], "flops_ratios": ["2"],
                         "round_to": ["8"], "quantizations": ["float"], "threads": ["1"],
                         "repeats": 3, "warmup": 1, "input_size": 96, "tfmot_python": ""})
    work = harness.runs_dir("tflite_latency")
    rng = np.random.default_rng(0)
    calibration = rng.uniform(-1, 1, size=(FLAGS.calibration, FLAGS.input_size,
                                           FLAGS.input_size, 3)).astype("float32")
    entries = make_models(work, calibration)
    for threads in FLAGS.threads:
        for entry, seconds in zip(entries, time_interleaved(entries, int(threads))):
            entry[f"seconds_{threads}"] = seconds
    write(entries, {"machine": harness.describe_machine(), "command": " ".join(sys.argv)})


if __name__ == "__main__":
    app.run(main)
