"""The PNG plots of ranking and DARN histories."""

import pytest

from keras_darn import plots


def _ranking_history(with_surface):
    steps = []
    for removed in range(4):
        step = {"units_removed": removed, "loss": 0.1 + removed, "accuracy": 1 - removed / 10,
                "eval_loss": 0.2 + removed, "eval_accuracy": 0.9 - removed / 10,
                "layer": "dense" if removed else None, "unit": removed or None}
        if with_surface and removed:
            step["error_surface"] = {"alphas": [0, 1, 2], "loss": [0.3, 0.1, 0.5]}
        steps.append(step)
    return {"steps": steps}


def test_plots_write_png_files(tmp_path):
    curves = tmp_path / "curves.png"
    figure = plots.plot_pruning_curves(
        {"brute": _ranking_history(False), "taylor": _ranking_history(False)}, curves,
        title="t", use_eval=True,
    )
    assert len(figure.axes) == 2 and len(figure.axes[0].lines) == 2
    surfaces = tmp_path / "surfaces.png"
    figure = plots.plot_error_surfaces(_ranking_history(True), surfaces)
    assert len(figure.axes[0].lines) == 3 + 1  # three surfaces and the alpha = 1 line
    darn = {
        "initial_accuracy": 0.9, "sacrifice": 0.015,
        "steps": [
            {"iteration": i, "threshold": t, "params": p, "flops": 2 * p, "accuracy": a,
             "accepted": ok}
            for i, (t, p, a, ok) in enumerate(
                [(0, 100, 0.9, True), (0.1, 80, 0.89, True), (0.2, 60, 0.8, False)]
            )
        ],
    }
    history_png = tmp_path / "darn.png"
    plots.plot_darn_history(darn, history_png)
    for path in (curves, surfaces, history_png):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="error_surface_every"):
        plots.plot_error_surfaces(_ranking_history(False))
