"""Plots of the benchmarks: matplotlib figures without a display, labelled axes with units."""

import os


def figure(ncols=1, nrows=1, width=6.0, height=4.2):
    """A matplotlib figure (no display) and its axes, always a flat list.

    Args:
        ncols: columns of axes. Defaults to `1`.
        nrows: rows of axes. Defaults to `1`.
        width: inches per column. Defaults to `6.0`.
        height: inches per row. Defaults to `4.2`.

    Returns:
        `(figure, axes)`; `axes` a list of `nrows * ncols` axes, row by row.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def label_axes(ax, xlabel, ylabel, title=None, legend=True, **legend_options):
    """Labels both axes (say the unit: "accuracy (%)", "time (s)"), titles, and adds the legend.

    Args:
        ax: the axes.
        xlabel: label of the x axis, with its unit.
        ylabel: label of the y axis, with its unit.
        title: title of the axes. Defaults to `None`.
        legend: whether to draw the legend of the labelled artists. Defaults
            to `True`.
        **legend_options: passed to `ax.legend`.
    """
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(**legend_options)
    ax.grid(True, alpha=0.3)


def save_figure(fig, path, dpi=110):
    """Writes `fig` as a PNG at `path`; returns `path`."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
