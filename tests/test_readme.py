"""Every Python block of README.md runs, in order, in one namespace."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
DEEP_IMPORT = re.compile(r"^\s*(from|import)\s+keras_darn\.\w+\.", re.M)


def _blocks():
    return BLOCK.findall((ROOT / "README.md").read_text())


def test_snippets_import_no_deeper_than_a_subpackage():
    for block in _blocks():
        assert not DEEP_IMPORT.search(block), block


def test_quick_starts_are_at_most_ten_lines():
    readme = (ROOT / "README.md").read_text()
    for heading in ("## Quick start: prune during `fit`", "## Quick start: grow between fits"):
        block = BLOCK.search(readme, readme.index(heading)).group(1)
        lines = [line for line in block.splitlines() if line.strip()]
        # Statements, not physical lines: a call continued on the next line counts once.
        statements = [line for line in lines if not line.startswith(" ")]
        assert len(statements) <= 10, (heading, statements)


def test_readme_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for block in _blocks():
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102
    result = namespace["result"]
    assert result.model.get_layer("hidden").units == 32
    assert (tmp_path / "small.tflite").stat().st_size > 0
