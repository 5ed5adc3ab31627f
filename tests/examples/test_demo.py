"""`examples/demo.py` end to end on digits: fair baseline, table, .tflite file and plot."""

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_demo_writes_table_tflite_and_plot(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    result = subprocess.run(
        [sys.executable, "examples/demo.py", "--dataset=digits", "--epochs=3", "--prune_start=0",
         "--prune_end=1", "--fraction=0.5", "--latency_repeats=5", f"--output_dir={tmp_path}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    method = results["method"]
    assert f"Method: '{method}'" in result.stdout
    # The baseline trained as many epochs as the pruned model: one curve point per epoch each.
    assert len(results["curves"]["baseline"]["val_accuracy"]) == 3
    assert len(results["curves"]["pruned"]["val_accuracy"]) == 3
    # The control: the pruned widths, trained from scratch for as long.
    assert len(results["curves"]["scratch"]["val_accuracy"]) == 3
    assert results["from_scratch"]["params"] == results["pruned"]["params"]
    assert results["from_scratch"]["flops"] == results["pruned"]["flops"]
    assert results["pruned"]["params"] < results["baseline"]["params"]
    live = results["curves"]["pruned"]["live_params"]
    assert live[0] == results["baseline"]["params"] and live[-1] == results["pruned"]["params"]
    assert results["shrink_max_abs_output_difference"] < 1e-5
    table = (tmp_path / "results.md").read_text()
    assert f"pruned by '{method}'" in table and "| Parameters |" in table
    assert "same widths, trained from scratch" in table
    assert table.split("\n\n", 1)[1].strip() in result.stdout  # the printed table
    tflite = (tmp_path / "small_model.tflite").read_bytes()
    assert tflite[4:8] == b"TFL3" and len(tflite) == results["pruned"]["tflite_bytes"]
    assert (tmp_path / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Quiet console: Keras' per-epoch lines, none of TensorFlow's or the converter's log lines.
    assert "I0000" not in result.stderr and "W0000" not in result.stderr, result.stderr[-2000:]
