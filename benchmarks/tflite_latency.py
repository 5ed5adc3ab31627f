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
reported with its interquartile range, and file sizes (raw and gzipped).
Each pruned model is paired with the tfmot model whose non-zero parameter
count is nearest its own parameter count.

Building (pruning, converting) and timing can run as separate stages, so
that the slow build can run at low priority and only the timing at normal
priority: `--stage=build` writes the `.tflite` files and a manifest under
`--models_dir`, `--stage=time` times them, `--stage=all` does both.

Example:

    python benchmarks/tflite_latency.py --architectures=mobilenet_v2 --repeats=20
    python benchmarks/tflite_latency.py --quick      # 96x96, few rounds, under results/runs/

Writes `<output_dir>/tflite_latency.{json,md}`.
"""

import gzip
import os
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
flags.DEFINE_enum("stage", "all", ["all", "build", "time"],
                  "build: write the .tflite files and their manifest; time: time a built set; all: both.")
flags.DEFINE_string("models_dir", "", "Where the .tflite files and the manifest go. "
                    "Defaults to benchmarks/results/runs/tflite_latency.")

APPLICATIONS = {"mobilenet_v2": "MobileNetV2", "resnet50": "ResNet50"}
MANIFEST = "manifest.json"


def build(architecture, size):
    keras.utils.set_random_seed(0)
    return getattr(keras.applications, APPLICATIONS[architecture])(
        weights=None, input_shape=(size, size, 3), classes=1000)


def convert(model, quantization, calibration):
    if quantization == "float":
        return tflite_export.to_tflite(model)
    return tflite_export.to_tflite(model, quantization="int8", representative_data=calibration)


def make_models(work, calibration):
    """`[{"name", "architecture", "tool", ..., "path"}]`: every .tflite file to time."""
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
        base_flops = darn.count_flops(base)
        for label, model, extra in variants:
            for quantization in FLAGS.quantizations:
                data = convert(model, quantization, calibration)
                path = os.path.join(work, f"{architecture}_{len(entries)}_{quantization}.tflite")
                with open(path, "wb") as f:
                    f.write(data)
                params = darn.count_params(model)
                entries.append({"architecture": architecture, "name": label, "tool": (
                    "keras" if label == "unpruned" else "keras_darn"),
                    "quantization": quantization, "params": params, "nonzero_params": params,
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
                # Executed dense: the interpreter does the unpruned model's FLOPs.
                entries.append({"architecture": architecture, "tool": "tfmot", **row,
                                "flops": base_flops})
    for entry in entries:
        with open(entry["path"], "rb") as f:
            data = f.read()
        entry["bytes"] = len(data)
        entry["gzip_bytes"] = len(gzip.compress(data, 6))
    return entries


def time_interleaved(entries, threads):
    """Seconds of every batch-1 invoke per entry (one per round), all interleaved round by round."""
    runners = []
    for entry in entries:
        interpreter = tflite_export.tflite_interpreter(entry["path"], num_threads=threads)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        sample = np.zeros(detail["shape"], dtype=detail["dtype"])
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
    return times


def summarize(entry, threads, times):
    q1, median, q3 = np.percentile(times, [25, 50, 75])
    entry[f"seconds_{threads}"] = float(median)
    entry[f"iqr_seconds_{threads}"] = [float(q1), float(q3)]
    entry[f"all_seconds_{threads}"] = [float(t) for t in times]


def pairs(entries):
    """Each keras_darn model against the tfmot models of the nearest non-zero parameter count.

    Of the tfmot files at that sparsity (plain, and stored sparse for
    XNNPACK's sparse inference) the faster one at each thread count is the
    one compared.
    """
    result = []
    for e in entries:
        if e["tool"] != "keras_darn":
            continue
        peers = [p for p in entries if p["tool"] == "tfmot"
                 and (p["architecture"], p["quantization"]) == (e["architecture"], e["quantization"])]
        if not peers:
            continue
        nearest = min(peers, key=lambda p: abs(np.log(p["nonzero_params"] / e["params"])))
        peers = [p for p in peers if p["nonzero_params"] == nearest["nonzero_params"]]
        row = {"architecture": e["architecture"], "quantization": e["quantization"],
               "pruned": e["name"], "pruned_params": e["params"],
               "tfmot_nonzero_params": nearest["nonzero_params"]}
        for threads in FLAGS.threads:
            fastest = min(peers, key=lambda p: p[f"seconds_{threads}"])
            row[f"tfmot_{threads}"] = fastest["name"]
            row[f"faster_{threads}"] = fastest[f"seconds_{threads}"] / e[f"seconds_{threads}"]
        result.append(row)
    return result


def acceptance(entries, pair_rows, ratio=4.0):
    """Lines: speed-up against FLOP reduction and against tfmot, float, 1 thread, `ratio`x fewer FLOPs."""
    lines = []
    if "1" not in FLAGS.threads:
        return lines
    base = {(e["architecture"], e["quantization"]): e for e in entries if e["name"] == "unpruned"}
    for e in entries:
        if e["tool"] != "keras_darn" or e["quantization"] != "float" or e["flops_ratio"] != ratio:
            continue
        reference = base[(e["architecture"], "float")]
        reduction = reference["flops"] / e["flops"]
        speedup = reference["seconds_1"] / e["seconds_1"]
        share = speedup / reduction
        line = (f"- {e['architecture']}, {e['name']}: {speedup:.2f}x faster for {reduction:.2f}x fewer "
                f"FLOPs = {share:.2f} of the FLOP reduction ({'met' if share >= 0.7 else 'NOT met'}, "
                f"goal 0.7)")
        for row in pair_rows:
            if (row["architecture"], row["quantization"], row["pruned"]) == (
                    e["architecture"], "float", e["name"]):
                faster = row["faster_1"]
                line += (f"; {faster:.2f}x faster than {row['tfmot_1']} ({row['tfmot_nonzero_params']:,} "
                         f"non-zero parameters against {row['pruned_params']:,}; "
                         f"{'met' if faster >= 2 else 'NOT met'}, goal 2x)")
        lines.append(line)
    return lines


def _ms(entry, threads):
    q1, q3 = entry[f"iqr_seconds_{threads}"]
    return f"{1000 * entry[f'seconds_{threads}']:.1f} ({1000 * q1:.1f}-{1000 * q3:.1f})"


def write(entries, meta):
    """The summary JSON and markdown under `--output_dir` (every round's seconds go beside the manifest)."""
    prefix = harness.result_prefix()
    base = {(e["architecture"], e["quantization"]): e for e in entries if e["name"] == "unpruned"}
    rows = []
    for e in entries:
        reference = base[(e["architecture"], e["quantization"])]
        sparse = e["tool"] == "tfmot"
        cells = [e["architecture"], e["quantization"], e["name"], f"{e['params']:,}",
                 f"{e['nonzero_params']:,}", f"{e['flops'] / 1e6:.0f} M" + (" (dense)" if sparse else ""),
                 f"{reference['flops'] / e['flops']:.2f}x"]
        for threads in FLAGS.threads:
            speedup = reference[f"seconds_{threads}"] / e[f"seconds_{threads}"]
            cells += [_ms(e, threads), f"{speedup:.2f}x"]
        cells += [f"{e['bytes'] / 1e6:.2f}", f"{e['gzip_bytes'] / 1e6:.2f}"]
        rows.append(cells)
    header = ["architecture", "TFLite", "model", "params", "non-zero params", "FLOPs", "fewer FLOPs"]
    for threads in FLAGS.threads:
        header += [f"ms, {threads} thread(s), median (IQR)", "speed-up"]
    header += ["MB", "MB gzip"]
    table = harness.markdown_table(header, rows)
    pair_rows = pairs(entries)
    pair_header = ["architecture", "TFLite", "keras_darn model", "its params", "tfmot non-zero params"]
    for t in FLAGS.threads:
        pair_header += [f"tfmot model, {t} thread(s)", "keras_darn times faster"]
    pair_table = harness.markdown_table(pair_header, [
        [r["architecture"], r["quantization"], r["pruned"], f"{r['pruned_params']:,}",
         f"{r['tfmot_nonzero_params']:,}"]
        + [c for t in FLAGS.threads for c in (r[f"tfmot_{t}"], f"{r[f'faster_{t}']:.2f}x")]
        for r in pair_rows]) if pair_rows else []
    verdict = acceptance(entries, pair_rows)
    summary = [{k: v for k, v in e.items() if not k.startswith("all_seconds")} for e in entries]
    harness.write_json(prefix + ".json", {"meta": meta, "models": summary, "pairs": pair_rows,
                                          "acceptance": verdict})
    harness.write_markdown(prefix + ".md", [
        "# TFLite latency: structured pruning vs sparsity", "",
        f"Batch 1, XNNPACK (LiteRT default), median and interquartile range of {FLAGS.repeats} "
        f"interleaved rounds after {FLAGS.warmup} warm-up rounds, {FLAGS.input_size}x{FLAGS.input_size} "
        f"inputs, random weights. Machine: {meta['machine']}; load average {meta['load_before']} "
        f"before timing, {meta['load_after']} after.", "",
        "tfmot's sparse models keep every weight (zeros included) and run dense, so their FLOPs are the "
        "unpruned model's; `non-zero params` counts their parameters less the pruned zeros.", "",
        *table, "", "## keras_darn against tfmot at about equal parameter count", "",
        "Each keras_darn model is paired with tfmot's sparsity whose non-zero parameter count is nearest "
        "its own parameter count; of tfmot's two files at that sparsity (plain, and EXPERIMENTAL_SPARSITY) "
        "the faster one at each thread count is the one compared.", "", *pair_table, "",
        "## Goals (float, 1 thread, 4x fewer FLOPs)", "",
        *verdict])
    print("\n".join(table + [""] + pair_table + [""] + verdict))


def main(argv):
    del argv
    harness.apply_quick({"architectures": ["mobilenet_v2"], "flops_ratios": ["2"],
                         "round_to": ["8"], "quantizations": ["float"], "threads": ["1"],
                         "repeats": 3, "warmup": 1, "input_size": 96, "tfmot_python": ""})
    if FLAGS.models_dir:
        work = FLAGS.models_dir
        os.makedirs(work, exist_ok=True)
    else:
        work = harness.runs_dir("quick" if FLAGS.quick else "tflite_latency")
    manifest = os.path.join(work, MANIFEST)
    if FLAGS.stage == "time":
        if not os.path.exists(manifest):
            raise ValueError(f"--stage=time needs the manifest of a --stage=build run: {manifest} "
                             "does not exist. Run --stage=build (or --stage=all) first.")
        entries = harness.read_json(manifest)["models"]
    else:
        rng = np.random.default_rng(0)
        calibration = rng.uniform(-1, 1, size=(FLAGS.calibration, FLAGS.input_size,
                                               FLAGS.input_size, 3)).astype("float32")
        entries = make_models(work, calibration)
        harness.write_json(manifest, {"command": " ".join(sys.argv), "models": entries})
        if FLAGS.stage == "build":
            return
    load_before = "%.2f %.2f %.2f" % os.getloadavg()
    for threads in FLAGS.threads:
        for entry, times in zip(entries, time_interleaved(entries, int(threads))):
            summarize(entry, threads, times)
    load_after = "%.2f %.2f %.2f" % os.getloadavg()
    harness.write_json(os.path.join(work, "times.json"), {"models": entries})
    write(entries, {"machine": harness.describe_machine(), "command": " ".join(sys.argv),
                    "load_before": load_before, "load_after": load_after})


if __name__ == "__main__":
    app.run(main)
