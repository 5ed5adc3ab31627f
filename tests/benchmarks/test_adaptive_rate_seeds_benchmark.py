"""`benchmarks/adaptive_rate_seeds.py`: the per-seed summary of Algorithm 1 against the static rates."""

import json
import os
import subprocess
import sys

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "adaptive_rate_seeds.py")


def _run(weights, rates=None):
    """A run entry as `adaptive_rate.py` writes it: accepted steps, then the failing one."""
    rates = rates or [0.2] * len(weights)
    history = [
        {"step": k + 1, "rate": r, "remaining_weights": w, "accepted": k < len(weights) - 1}
        for k, (w, r) in enumerate(zip(weights, rates))
    ]
    accepted = [h for h in history if h["accepted"]]
    return {
        "history": history, "accepted_steps": len(accepted), "failed": not accepted,
        "remaining_weights": accepted[-1]["remaining_weights"] if accepted else 1000,
    }


def _write_seed(directory, seed, adaptive):
    runs = {
        "static 0.2 @ 0.46": _run([800, 640, 512, 410]),
        "static 0.3 @ 0.46": _run([700, 490, 343, 240], [0.3] * 4),  # the best: 343 in 3 steps
        "adaptive @ 0.46": adaptive,
    }
    result = {
        "config": {"thresholds": ["0.46"], "static_rates": ["0.2", "0.3"]},
        "datasets": {"digits_pooled": {"folds": [{"runs": runs}]}},
    }
    with open(os.path.join(directory, f"adaptive_rate_fraction_seed{seed}.json"), "w") as f:
        json.dump(result, f)


def test_summary_tells_a_static_twin_from_an_adaptive_run_that_beats_the_grid(tmp_path):
    # Seed 0: adaptive is the static 0.3 run step for step: as few weights, but not fewer steps.
    _write_seed(tmp_path, 0, _run([700, 490, 343, 240], [0.3] * 4))
    # Seed 1: adaptive changes its rate and keeps fewer weights (340) in fewer steps (2).
    _write_seed(tmp_path, 1, _run([600, 340, 200], [0.4, 0.45, 0.45]))
    subprocess.run(
        [sys.executable, SCRIPT, "--report_only", "--seeds=0,1", f"--output_dir={tmp_path}",
         f"--runs_dir={tmp_path}", "--name=summary"],
        check=True, capture_output=True,
    )
    with open(tmp_path / "summary.json") as f:
        summary = json.load(f)
    cells = summary["cells"]["digits_pooled"]["0.46"]
    twin, beats = cells["0"], cells["1"]
    assert twin["best_static"] == beats["best_static"] == "0.3"
    assert twin["adaptive_rates"] == [0.3, 0.3, 0.3]
    assert twin["kept_first_rate"] and twin["static_twin"] == "0.3" and twin["identical_to_twin"]
    assert (twin["no_more_weights"], twin["fewer_steps"], twin["both"]) == (True, False, False)
    assert beats["adaptive_rates"] == [0.4, 0.45]
    assert not beats["kept_first_rate"] and beats["static_twin"] is None and not beats["identical_to_twin"]
    assert (beats["no_more_weights"], beats["fewer_steps"], beats["both"]) == (True, True, True)
    # Means over the two seeds: static 0.3 (343 weights, 3 steps) is the best rate; adaptive 341.5 in 2.5.
    means = summary["means"]["digits_pooled"]["0.46"]
    assert means["best_static"] == "static 0.3"
    assert means["arms"]["static 0.2"]["weights"] == 512 and means["arms"]["adaptive"]["weights"] == 341.5
    assert means["arms"]["adaptive"]["steps"] == 2.5
    assert means["no_more_weights"] and means["fewer_steps"]
    report = (tmp_path / "summary.md").read_text()
    assert "In 1 of 2 runs Algorithm 1 kept its first rate" in report
    assert "met in 1 of 2 runs" in report
    assert (tmp_path / "summary.png").stat().st_size > 0
