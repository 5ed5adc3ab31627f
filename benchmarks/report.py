"""Markdown tables for the benchmark result files (`benchmarks/results/*.md`)."""


def markdown_table(header, rows):
    """Returns the lines of a markdown table.

    One line for the header, the separator `|---|---|...|` and one line per
    row, each written as `| cell | cell |`. Cells are converted with `str`, so
    numbers should be formatted by the caller; a cell that is `None` is left
    blank (`| |`), while an empty string gives `|  |`.

    Args:
        header: The column titles.
        rows: Iterable of rows, each a sequence of cells with as many cells as
            `header` has titles.

    Returns:
        A list of strings without line breaks: header line, separator line,
        then the rows in order.

    Raises:
        ValueError: If a row does not have as many cells as the header.

    Example:

    >>> markdown_table(["model", "params"], [["dense", f"{1234:,}"], ["empty", None]])
    ['| model | params |', '|---|---|', '| dense | 1,234 |', '| empty | |']
    """
    lines = [_line(header), "|" + "---|" * len(header)]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"Row {row!r} has {len(row)} cells, the header {len(header)}.")
        lines.append(_line(row))
    return lines


def _line(cells):
    return "|" + "".join(" |" if cell is None else f" {cell} |" for cell in cells)
