"""README.md: short, speaks to users, and every Python block of it runs, in order, in one namespace."""

import re

from support import snippets

ROOT = snippets.ROOT
README = ROOT / "README.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
DEEP_IMPORT = re.compile(r"^\s*(from|import)\s+keras_darn\.\w+\.", re.M)
# What a user reads must not speak of how the project was made, nor point outside the repository.
FORBIDDEN = re.compile(r"\bsessions?\b|\bissues?\b|\.\./shared|DESIGN\.md|/work/", re.I)


def _blocks():
    return [block.code for block in snippets.blocks(README)]


def test_readme_is_at_most_250_lines():
    assert len(README.read_text().splitlines()) <= 250


def test_the_two_commands_come_first():
    text = README.read_text()
    first_block = text.index("```")
    assert text.startswith("```bash", first_block), "the first code block shows the two commands"
    commands = text[first_block:text.index("```", first_block + 3)]
    assert "bash scripts/demo.sh" in commands and "bash scripts/test.sh" in commands


def test_readme_speaks_to_users():
    found = [line for line in README.read_text().splitlines() if FORBIDDEN.search(line)]
    assert not found, found


def test_relative_links_exist():
    text = README.read_text()
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert (ROOT / target).exists(), target


def test_snippets_import_no_deeper_than_a_subpackage():
    for block in _blocks():
        assert not DEEP_IMPORT.search(block), block


def test_quick_starts_are_at_most_ten_lines():
    readme = README.read_text()
    for heading in ("## Quick start: prune during `fit`", "## Quick start: grow between fits"):
        block = BLOCK.search(readme, readme.index(heading)).group(1)
        lines = [line for line in block.splitlines() if line.strip()]
        # Statements, not physical lines: a call continued on the next line counts once.
        statements = [line for line in lines if not line.startswith(" ")]
        assert len(statements) <= 10, (heading, statements)


def test_readme_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace, count = snippets.run_page(README)
    assert count == len(_blocks()) >= 4
    assert namespace["result"].model.get_layer("hidden").units == 32
    assert (tmp_path / "small.tflite").stat().st_size > 0
