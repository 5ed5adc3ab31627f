"""`benchmarks/harness/`: tables, result files, quick mode, data, plots and interleaved timing."""

import os
import sys

import numpy as np
import pytest
from absl import flags

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))

import harness  # noqa: E402  (benchmarks/harness/)


def test_header_separator_and_rows():
    lines = harness.markdown_table(["net", "params", "note"], [["a", 12, ""], ["b", "3.4k", None]])
    assert lines == [
        "| net | params | note |",
        "|---|---|---|",
        "| a | 12 |  |",
        "| b | 3.4k | |",
    ]


def test_no_rows_gives_header_only():
    assert harness.markdown_table(["x"], []) == ["| x |", "|---|"]


def test_row_of_wrong_length_is_refused():
    with pytest.raises(ValueError, match="2 cells, the header 3"):
        harness.markdown_table(["a", "b", "c"], [[1, 2]])


def test_default_output_dir_is_the_checkouts_results_folder():
    assert harness.RESULTS_DIR == os.path.join(harness.REPO_DIR, "benchmarks", "results")
    assert harness.RUNS_DIR == os.path.join(harness.RESULTS_DIR, "runs")
    with open(os.path.join(harness.REPO_DIR, ".gitignore")) as f:
        assert "benchmarks/results/runs/" in f.read().split()


def test_json_and_markdown_round_trip(tmp_path):
    path = harness.write_json(str(tmp_path / "sub" / "r.json"),
                              {"a": np.float32(0.5), "b": np.arange(3), "c": np.int64(7)})
    assert harness.read_json(path) == {"a": 0.5, "b": [0, 1, 2], "c": 7}
    md = harness.write_markdown(str(tmp_path / "r.md"), ["# t", "", "x"])
    assert open(md).read() == "# t\n\nx\n"


def test_quick_sets_only_flags_not_given_and_moves_output():
    values = flags.FlagValues()
    flags.DEFINE_integer("epochs", 10, "", flag_values=values)
    flags.DEFINE_integer("num_train", 1000, "", flag_values=values)
    flags.DEFINE_string("output_dir", harness.RESULTS_DIR, "", flag_values=values)
    flags.DEFINE_bool("quick", False, "", flag_values=values)
    values(["prog", "--quick", "--num_train=50"])
    assert harness.apply_quick({"epochs": 1, "num_train": 10}, flag_values=values)
    assert values.epochs == 1 and values.num_train == 50
    assert values.output_dir == os.path.join(harness.RUNS_DIR, "quick")


def test_quick_off_changes_nothing():
    values = flags.FlagValues()
    flags.DEFINE_integer("epochs", 10, "", flag_values=values)
    flags.DEFINE_bool("quick", False, "", flag_values=values)
    values(["prog"])
    assert not harness.apply_quick({"epochs": 1}, flag_values=values)
    assert values.epochs == 10


def test_digits_as_images_and_vectors():
    (x_train, y_train), (x_test, _) = harness.load_digits()
    assert x_train.shape == (1347, 8, 8, 1) and x_test.shape == (450, 8, 8, 1)
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0 and len(y_train) == 1347
    (x_train, _), _ = harness.load_digits(images=False)
    assert x_train.shape == (1347, 64)


def test_load_images_falls_back_to_digits(monkeypatch):
    from keras_darn import datasets

    def missing(*args, **kwargs):
        raise datasets.DatasetNotFoundError("no files")

    monkeypatch.setattr(datasets, "load_fashion_mnist", missing)
    name, (x_train, _), _ = harness.load_images(200, 100, dataset="auto")
    assert name == "digits" and len(x_train) == 200
    with pytest.raises(datasets.DatasetNotFoundError):
        harness.load_images(200, 100, dataset="fashion_mnist")
    with pytest.raises(ValueError, match="dataset='mnist'"):
        harness.load_images(200, 100, dataset="mnist")


def test_figure_labels_and_saves(tmp_path):
    fig, axes = harness.figure(ncols=2)
    assert len(axes) == 2
    axes[0].plot([0, 1], [1, 2], label="run")
    harness.label_axes(axes[0], "epoch", "accuracy (%)", title="t")
    assert axes[0].get_xlabel() == "epoch" and axes[0].get_legend() is not None
    path = harness.save_figure(fig, str(tmp_path / "p.png"))
    assert os.path.getsize(path) > 0


def test_interleaved_ratio_alternates_and_divides():
    calls = []
    result = harness.interleaved_ratio(lambda: calls.append("c"), lambda: calls.append("b"),
                                       rounds=3, warmup=1)
    # Warm-up pair, then c-b, b-c, c-b: neither always runs first.
    assert calls == ["c", "b", "c", "b", "b", "c", "c", "b"]
    assert len(result["ratios"]) == 3 and result["ratio"] > 0
    with pytest.raises(ValueError, match="rounds=0"):
        harness.interleaved_ratio(lambda: None, lambda: None, rounds=0)
