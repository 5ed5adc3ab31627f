"""Where the benchmarks and their results live: paths relative to this checkout, never machine-specific."""

import os

BENCHMARKS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_DIR = os.path.dirname(BENCHMARKS_DIR)
RESULTS_DIR = os.path.join(BENCHMARKS_DIR, "results")
RUNS_DIR = os.path.join(RESULTS_DIR, "runs")


def runs_dir(*parts):
    """`benchmarks/results/runs/<parts...>`, created: per-seed and exploratory output (not committed)."""
    path = os.path.join(RUNS_DIR, *parts)
    os.makedirs(path, exist_ok=True)
    return path
