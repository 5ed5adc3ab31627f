"""Result files: the summary JSON, the markdown table, and the machine they were measured on."""

import json
import os
import platform

from absl import flags

FLAGS = flags.FLAGS


def result_prefix(name=None, output_dir=None):
    """`<output_dir>/<name>` (from the flags unless given), the directory created.

    Args:
        name: the file prefix. Defaults to `--name`.
        output_dir: the directory. Defaults to `--output_dir`.

    Returns:
        The path prefix; add `.json`, `.md` or `_<plot>.png`.
    """
    name = FLAGS.name if name is None else name
    output_dir = FLAGS.output_dir if output_dir is None else output_dir
    os.makedirs(output_dir, exist_ok=True)
    return os.path.join(output_dir, name)


def write_json(path, data):
    """Writes `data` as indented JSON (numpy numbers as Python numbers); returns `path`."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f, indent=1, default=_to_json)
        f.write("\n")
    return path


def read_json(path):
    """The data of a JSON file written by `write_json`."""
    with open(path) as f:
        return json.load(f)


def write_markdown(path, lines):
    """Writes `lines` (a string or a list of lines) as a markdown file ending in a newline; returns `path`."""
    text = lines if isinstance(lines, str) else "\n".join(lines)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(text.rstrip("\n") + "\n")
    return path


def _to_json(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"Not JSON serializable: {type(value).__name__}")


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


def describe_machine():
    """`"x86_64, 2 CPUs, Python 3.11.7, Keras 3.15.1"` for the running process."""
    import keras

    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"Keras {keras.__version__}"
    )
