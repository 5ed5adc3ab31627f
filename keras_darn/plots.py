"""Plots of pruning runs, as in the two papers' figures (PNG via matplotlib).

- `plot_pruning_curves`: loss and accuracy against the number of units
  removed, one curve per run (*Incredible Shrinking Network*, Figures 3, 4,
  8, 9);
- `plot_error_surfaces`: loss against a gain alpha applied to the units
  chosen for removal, in log and real scale (Figures 5-7, 10-12);
- `plot_darn_history`: parameters, FLOPs and accuracy against the training
  iteration of DARN's Algorithm 1, thresholds marked (DARN, Figures 1-5).

Figures are built with `matplotlib.figure.Figure`, so no pyplot backend or
display is involved; each function returns the figure and writes a PNG when
given a path.
"""

import numpy as np


def _figure(columns, width=6.0, height=4.2):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * columns, height), layout="constrained")
    axes = figure.subplots(1, columns)
    return figure, np.atleast_1d(axes)


def _save(figure, path):
    if path is not None:
        figure.savefig(path, dpi=110)
    return figure


def plot_pruning_curves(histories, path=None, title=None, use_eval=False):
    """Loss and accuracy against units removed, one curve per history.

    Args:
        histories: `{label: history}`, each the `history` of the `Result`
            of `single_overall_ranking` / `iterative_reranking` (or of
            `darn.resize` with a ranking algorithm).
        path: PNG file to write. Defaults to `None` (no file).
        title: figure title. Defaults to `None`.
        use_eval: plot `eval_loss`/`eval_accuracy` (the `eval_data` of the
            run) instead of the ranking data's. Defaults to `False`.

    Returns:
        The `matplotlib.figure.Figure`.

    Example:

    ```python
    plot_pruning_curves({"brute force": h1, "taylor 2nd": h2}, "curves.png")
    ```
    """
    figure, (loss_axis, accuracy_axis) = _figure(2)
    prefix = "eval_" if use_eval else ""
    for label, history in histories.items():
        steps = history["steps"]
        removed = [s["units_removed"] - steps[0]["units_removed"] for s in steps]
        loss_axis.plot(removed, [s[f"{prefix}loss"] for s in steps], label=label)
        accuracy_axis.plot(removed, [s[f"{prefix}accuracy"] for s in steps], label=label)
    loss_axis.set_xlabel("units removed")
    loss_axis.set_ylabel("loss" + (" (test)" if use_eval else ""))
    loss_axis.set_yscale("log")
    accuracy_axis.set_xlabel("units removed")
    accuracy_axis.set_ylabel("accuracy" + (" (test)" if use_eval else ""))
    for axis in (loss_axis, accuracy_axis):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def plot_error_surfaces(history, path=None, title=None):
    """Loss against the gain on each unit chosen for removal (log and real).

    Args:
        history: a ranking history recorded with `error_surface_every`.
        path: PNG file to write. Defaults to `None`.
        title: figure title. Defaults to `None`.

    Returns:
        The `matplotlib.figure.Figure`.

    Raises:
        ValueError: if the history holds no error surface.
    """
    surfaces = [(i, s) for i, s in enumerate(history["steps"]) if "error_surface" in s]
    if not surfaces:
        raise ValueError(
            "The history holds no error surface: run the ranking with "
            "`error_surface_every=...`."
        )
    figure, (log_axis, real_axis) = _figure(2)
    colors = _colors(len(surfaces))
    for color, (index, step) in zip(colors, surfaces):
        surface = step["error_surface"]
        label = f"removal {index}: {step['layer']}[{step['unit']}]"
        log_axis.plot(surface["alphas"], surface["loss"], color=color, label=label)
        real_axis.plot(surface["alphas"], surface["loss"], color=color, label=label)
    log_axis.set_yscale("log")
    for axis in (log_axis, real_axis):
        axis.axvline(1.0, color="red", linewidth=1)
        axis.set_xlabel("gain alpha on the unit's output (1 = trained, 0 = removed)")
        axis.set_ylabel("loss")
        axis.grid(alpha=0.3)
    real_axis.legend(fontsize=7)
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def _colors(count):
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(v) for v in np.linspace(0.0, 0.9, max(count, 1))]


def plot_darn_history(history, path=None, title=None):
    """Parameters, FLOPs and accuracy against DARN's training iterations.

    Args:
        history: the history returned by `dynamic_neuron_removal`.
        path: PNG file to write. Defaults to `None`.
        title: figure title. Defaults to `None`.

    Returns:
        The `matplotlib.figure.Figure`.
    """
    steps = history["steps"]
    iterations = [s["iteration"] for s in steps]
    figure, (size_axis, accuracy_axis) = _figure(2)
    params = np.array([s["params"] for s in steps], dtype=float)
    flops = np.array([s["flops"] for s in steps], dtype=float)
    size_axis.plot(iterations, 100 * params / params[0], "o-", color="tab:orange",
                   label="parameters")
    size_axis.plot(iterations, 100 * flops / flops[0], "s--", color="tab:green",
                   label="FLOPs")
    for step, value in zip(steps, 100 * params / params[0]):
        if step["iteration"]:
            size_axis.annotate(f"{step['threshold']:.3g}", (step["iteration"], value),
                               textcoords="offset points", xytext=(0, 6), fontsize=7,
                               ha="center")
    size_axis.set_ylabel("% of the unpruned model (labels: threshold)")
    accuracy = [s["accuracy"] for s in steps]
    accuracy_axis.plot(iterations, accuracy, "-", color="tab:blue", label="accuracy")
    accepted = [i for i, s in zip(iterations, steps) if s["accepted"]]
    rejected = [i for i, s in zip(iterations, steps) if not s["accepted"]]
    accuracy_axis.plot(accepted, [accuracy[iterations.index(i)] for i in accepted], "o",
                       color="tab:blue", label="accepted")
    accuracy_axis.plot(rejected, [accuracy[iterations.index(i)] for i in rejected], "x",
                       color="tab:red", label="rejected")
    bound = history["initial_accuracy"] - history["sacrifice"]
    accuracy_axis.axhline(bound, color="gray", linestyle=":", label="initial - sacrifice")
    accuracy_axis.set_ylabel("validation accuracy")
    from matplotlib.ticker import MaxNLocator

    for axis in (size_axis, accuracy_axis):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel("training iteration")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    if title:
        figure.suptitle(title)
    return _save(figure, path)
