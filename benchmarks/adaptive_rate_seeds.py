"""Benchmark: Algorithm 1 under the fraction rule, over seeds.

The goals of the adaptive rate are no more remaining weights than the best
static rate, and fewer prune-retrain steps. Under the fraction definition of
the rate (the fraction of the remaining weights pruned per step), every run of
`benchmarks/adaptive_rate.py` so far showed adaptive either tying a static rate
or trading weights for steps. This script checks, over several seeds, why:

Algorithm 1 raises PR while the accuracy right after pruning (no retraining)
stays within the threshold. Pruning the same fraction removes more and more of
what the network relies on as it gets sparser, so that immediate drop grows
from step to step; once the first step has settled on a rate PR1, every later
trial at PR1 + 0.05 fails and the carried-over PR stays at PR1. The adaptive run
is then the static run at PR1, step for step.

For every seed it runs `adaptive_rate.py --datasets=digits_pooled,fashion
--nopeer --norestart_arm --aux_units= --seed=N --name=<--run_prefix>N` (its
defaults otherwise: fraction rule, `on_failure="stop"`), unless that run's
result file already exists, and summarises per dataset, threshold and seed:
the adaptive rates of the accepted steps, whether they all equal PR1, whether
the run is identical (remaining weights at every step) to the static run at
PR1 when PR1 is one of the static rates, and the two targets against the best
static rate (fewest remaining weights among those that did not fail).

Writes `<output_dir>/<name>.json`, `<name>.md` and `<name>.png`.

    python benchmarks/adaptive_rate_seeds.py                 # seeds 0-9, about 100 s each on 2 CPU cores
    python benchmarks/adaptive_rate_seeds.py --report_only   # summarise the runs already there
"""

import os
import subprocess
import sys

import harness  # benchmarks/harness/

import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

FLAGS = flags.FLAGS
harness.define_seeds_flag(range(10), help_text="Seeds, one adaptive_rate.py run each.")
flags.DEFINE_string("run_prefix", "adaptive_rate_fraction_seed", "Result-file prefix of the per-seed runs.")
flags.DEFINE_string("runs_dir", os.path.join(harness.RUNS_DIR, "adaptive_rate_seeds"),
                    "Where the per-seed runs are written and read (not committed).")
flags.DEFINE_boolean("report_only", False, "Only summarise the per-seed runs already written.")
harness.define_output_flags("adaptive_rate_seeds")

RUN_FLAGS = ["--datasets=digits_pooled,fashion", "--nopeer", "--norestart_arm", "--aux_units="]


def run_path(seed):
    return os.path.join(FLAGS.runs_dir, f"{FLAGS.run_prefix}{seed}.json")


def run_seed(seed):
    """Runs `adaptive_rate.py` for one seed in its own process."""
    command = [sys.executable, os.path.join(os.path.dirname(__file__), "adaptive_rate.py"), *RUN_FLAGS,
               f"--seed={seed}", f"--name={FLAGS.run_prefix}{seed}", f"--output_dir={FLAGS.runs_dir}"]
    print(" ".join(command), flush=True)
    subprocess.run(command, check=True)


def accepted(run):
    return [h for h in run["history"] if h["accepted"]]


def seed_cell(runs, threshold, static_rates):
    """Summarises one seed's runs at one threshold (one fold: digits_pooled and fashion have one)."""
    adaptive = runs[f"adaptive @ {threshold}"]
    steps = accepted(adaptive)
    rates = [round(h["rate"], 4) for h in steps]
    statics = {r: runs[f"static {r} @ {threshold}"] for r in static_rates}
    alive = {r: s for r, s in statics.items() if not s["failed"]}
    best = min(alive, key=lambda r: alive[r]["remaining_weights"]) if alive else None
    first = rates[0] if rates else None
    twin = next((r for r in static_rates if first is not None and abs(float(r) - first) < 1e-9), None)
    identical = twin is not None and (
        [h["remaining_weights"] for h in accepted(statics[twin])] == [h["remaining_weights"] for h in steps]
    )
    cell = {
        "adaptive_rates": rates,
        "kept_first_rate": bool(rates) and all(r == first for r in rates),
        "static_twin": twin,
        "identical_to_twin": identical,
        "adaptive_weights": adaptive["remaining_weights"],
        "adaptive_steps": adaptive["accepted_steps"],
        "statics": {r: [s["remaining_weights"], s["accepted_steps"], s["failed"]] for r, s in statics.items()},
        "best_static": best,
    }
    if best is not None:
        cell["no_more_weights"] = adaptive["remaining_weights"] <= alive[best]["remaining_weights"]
        cell["fewer_steps"] = adaptive["accepted_steps"] < alive[best]["accepted_steps"]
        cell["both"] = cell["no_more_weights"] and cell["fewer_steps"]
    return cell


def means(per_seed):
    """Mean remaining weights and accepted steps over seeds, per static rate and for adaptive.

    A failed run counts with the weights it kept (all of them). The best static rate is the one
    with the fewest mean weights: the rate a user would pick, not a different rate per seed.
    """
    cells = list(per_seed.values())
    arms = {f"static {r}": [(c["statics"][r][0], c["statics"][r][1]) for c in cells] for r in cells[0]["statics"]}
    arms["adaptive"] = [(c["adaptive_weights"], c["adaptive_steps"]) for c in cells]
    table = {
        arm: {"weights": float(np.mean([w for w, _ in runs])), "weights_std": float(np.std([w for w, _ in runs])),
              "steps": float(np.mean([s for _, s in runs]))}
        for arm, runs in arms.items()
    }
    best = min((a for a in table if a != "adaptive"), key=lambda a: table[a]["weights"])
    adaptive = table["adaptive"]
    return {
        "arms": table, "best_static": best,
        "no_more_weights": adaptive["weights"] <= table[best]["weights"],
        "fewer_steps": adaptive["steps"] < table[best]["steps"],
    }


def summarise(seeds):
    summary = {"seeds": seeds, "run_flags": RUN_FLAGS, "cells": {}, "means": {}}
    for seed in seeds:
        run = harness.read_json(run_path(seed))
        config = run["config"]
        for dataset, data in run["datasets"].items():
            if len(data["folds"]) != 1:
                raise ValueError(f"{run_path(seed)}: {dataset} has {len(data['folds'])} folds, expected 1.")
            for threshold in config["thresholds"]:
                summary["cells"].setdefault(dataset, {}).setdefault(threshold, {})[seed] = seed_cell(
                    data["folds"][0]["runs"], threshold, config["static_rates"]
                )
    for dataset, per_threshold in summary["cells"].items():
        summary["means"][dataset] = {t: means(per_seed) for t, per_seed in per_threshold.items()}
    return summary


def count(cells, key):
    return sum(bool(c.get(key)) for c in cells)


def markdown(summary):
    seeds = summary["seeds"]
    lines = [
        "# Algorithm 1 under the fraction rule, over seeds",
        "",
        f"Generated by `benchmarks/adaptive_rate_seeds.py`; every number below is in `{FLAGS.name}.json`, "
        f"summarised from `{FLAGS.run_prefix}<seed>.json` (`adaptive_rate.py {' '.join(RUN_FLAGS)} --seed=N`). "
        "A seed sets the digits fold split, the Fashion-MNIST subsets, the initial weights and the "
        "training order; digits_pooled is the 10 fold networks judged by their pooled "
        "cross-validation accuracy.",
        "",
        "## Over seeds",
        "",
    ]
    rows = []
    for dataset, per_threshold in summary["cells"].items():
        for threshold, per_seed in per_threshold.items():
            cells = list(per_seed.values())
            first_rates = sorted({c["adaptive_rates"][0] for c in cells if c["adaptive_rates"]})
            rows.append([
                dataset, threshold, len(cells), count(cells, "kept_first_rate"),
                f"{count(cells, 'identical_to_twin')} of {sum(c['static_twin'] is not None for c in cells)}",
                ", ".join(f"{r:g}" for r in first_rates), count(cells, "no_more_weights"),
                count(cells, "fewer_steps"), count(cells, "both"),
            ])
    lines += harness.markdown_table(
        ["dataset", "drop (pts)", "seeds", "adaptive kept PR1 at every step",
         "identical to static PR1 (where PR1 is a static rate)", "PR1 seen", "no more weights",
         "fewer steps", "both goals"],
        rows,
    )
    lines += ["", "## Means over seeds", "",
              "Remaining weights (mean ± std over seeds) / mean accepted steps. The best static rate is the one "
              "with the fewest mean weights (the table above instead takes the best rate of each seed).", ""]
    rows = []
    for dataset, per_threshold in summary["means"].items():
        for threshold, m in per_threshold.items():
            rows.append([
                dataset, threshold,
                *[f"{a['weights']:.0f} ± {a['weights_std']:.0f} / {a['steps']:.1f}" for a in m["arms"].values()],
                m["best_static"], "MET" if m["no_more_weights"] else "not met",
                "MET" if m["fewer_steps"] else "not met",
            ])
    arms = list(next(iter(next(iter(summary["means"].values())).values()))["arms"])
    lines += harness.markdown_table(
        ["dataset", "drop (pts)", *arms, "best static", "no more weights", "fewer steps"], rows
    )
    lines += ["", "## Per seed", "",
              "Weights / accepted steps; `*` marks the best static rate (fewest weights, not failed)."]
    for dataset, per_threshold in summary["cells"].items():
        for threshold, per_seed in per_threshold.items():
            lines += ["", f"### {dataset}, drop {threshold} pts", ""]
            rates = list(next(iter(per_seed.values()))["statics"])
            rows = []
            for seed, c in per_seed.items():
                statics = [
                    f"{w:.0f} / {s}{' (failed)' if failed else ''}{' *' if r == c['best_static'] else ''}"
                    for r, (w, s, failed) in c["statics"].items()
                ]
                rows.append([
                    seed, *statics, f"{c['adaptive_weights']:.0f} / {c['adaptive_steps']}",
                    " ".join(f"{r:g}" for r in c["adaptive_rates"]),
                    "yes" if c["identical_to_twin"] else ("no" if c["static_twin"] else "-"),
                    "MET" if c.get("both") else "not met",
                ])
            lines += harness.markdown_table(
                ["seed", *[f"static {r}" for r in rates], "adaptive", "adaptive rates",
                 "identical to static PR1", "both goals"],
                rows,
            )
    cells = [c for t in summary["cells"].values() for s in t.values() for c in s.values()]
    settings = [m for t in summary["means"].values() for m in t.values()]
    lines += [
        "",
        "## Reading",
        "",
        f"- In {count(cells, 'kept_first_rate')} of {len(cells)} runs Algorithm 1 kept its first rate PR1 at every "
        "accepted step; where PR1 is one of the static rates the adaptive run was the static run at PR1, step for "
        f"step, in {count(cells, 'identical_to_twin')} of {sum(c['static_twin'] is not None for c in cells)}.",
        f"- Both goals together (no more weights than the best static rate, in fewer steps) were met in "
        f"{count(cells, 'both')} of {len(cells)} runs.",
        f"- Against the best static rate by mean over seeds, both goals were met in "
        f"{sum(m['no_more_weights'] and m['fewer_steps'] for m in settings)} of {len(settings)} settings, "
        f"no more weights in {sum(m['no_more_weights'] for m in settings)}, fewer steps in "
        f"{sum(m['fewer_steps'] for m in settings)}.",
        "",
    ]
    return "\n".join(lines)


def plot(summary, path):
    panels = [(d, t) for d, per_t in summary["cells"].items() for t in per_t]
    fig, axes = harness.figure(ncols=len(panels), width=4.2, height=3.8)
    for ax, (dataset, threshold) in zip(axes, panels):
        per_seed = summary["cells"][dataset][threshold]
        for k, rate in enumerate(next(iter(per_seed.values()))["statics"]):
            points = [(c["statics"][rate][1], c["statics"][rate][0]) for c in per_seed.values()
                      if not c["statics"][rate][2]]
            ax.scatter(*zip(*points), marker="os^"[k % 3], facecolors="none", edgecolors=f"C{k}",
                       s=60, label=f"static {rate}")
        ax.scatter([c["adaptive_steps"] for c in per_seed.values()],
                   [c["adaptive_weights"] for c in per_seed.values()], marker="x", c="k", label="adaptive")
        harness.label_axes(ax, "accepted prune-retrain steps", "remaining weights per network",
                           title=f"{dataset}, drop {threshold} pts", legend=ax is axes[0], fontsize=8)
    fig.suptitle("One point per seed; lower left is better")
    harness.save_figure(fig, path)


def main(argv):
    del argv
    seeds = harness.seeds()
    if not FLAGS.report_only:
        for seed in seeds:
            if not os.path.exists(run_path(seed)):
                run_seed(seed)
    summary = summarise(seeds)
    base = harness.result_prefix()
    harness.write_json(base + ".json", summary)
    text = markdown(summary)
    harness.write_markdown(base + ".md", text)
    plot(summary, base + ".png")
    print(text)


if __name__ == "__main__":
    app.run(main)
