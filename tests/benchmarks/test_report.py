"""`benchmarks/report.py`: the markdown tables of the result files."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))

import report  # noqa: E402  (benchmarks/report.py)


def test_header_separator_and_rows():
    lines = report.markdown_table(["net", "params", "note"], [["a", 12, ""], ["b", "3.4k", None]])
    assert lines == [
        "| net | params | note |",
        "|---|---|---|",
        "| a | 12 |  |",
        "| b | 3.4k | |",
    ]


def test_no_rows_gives_header_only():
    assert report.markdown_table(["x"], []) == ["| x |", "|---|"]


def test_row_of_wrong_length_is_refused():
    with pytest.raises(ValueError, match="2 cells, the header 3"):
        report.markdown_table(["a", "b", "c"], [[1, 2]])
