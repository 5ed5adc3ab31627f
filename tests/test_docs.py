"""The documentation site builds without a warning, and every snippet in it runs."""

import os
import pathlib
import re
import subprocess
import sys

import pytest
import yaml

from support import snippets

ROOT = snippets.ROOT
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
# What a user reads must not speak of how the project was made, nor point outside the repository.
FORBIDDEN = re.compile(r"\bsessions?\b|\bissues?\b|\.\./shared|DESIGN\.md|/work/", re.I)


def _nav_pages(entries):
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        if isinstance(value, list):
            yield from _nav_pages(value)
        else:
            yield value


def test_mkdocs_build_strict(tmp_path):
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    process = subprocess.run(
        # Not --quiet: with it, mkdocs does not count the warnings it hides.
        [sys.executable, "-m", "mkdocs", "build", "--strict",
         "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    output = process.stdout + process.stderr
    assert process.returncode == 0, output
    assert "WARNING" not in output, output
    assert (tmp_path / "site" / "api" / "index.html").stat().st_size > 0


def test_every_page_is_in_the_nav():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    in_nav = set(_nav_pages(config["nav"]))
    missing = [str(p.relative_to(DOCS)) for p in PAGES if str(p.relative_to(DOCS)) not in in_nav]
    assert not missing, f"pages missing from the nav of mkdocs.yml: {missing}"


def test_every_public_name_has_an_api_entry():
    """Each name a package `__init__` re-exports has a `:::` entry in docs/api/."""
    documented = set()  # `::: path` entries, and full paths named in backticks (constants, aliases)
    for page in (DOCS / "api").glob("*.md"):
        text = page.read_text()
        documented.update(re.findall(r"^::: (\S+)", text, re.M))
        documented.update(re.findall(r"`(keras_darn\.[\w.]+)`", text))
    leaves = {name.rsplit(".", 1)[-1] for name in documented}
    missing = []
    for init in sorted((ROOT / "keras_darn").rglob("__init__.py")):
        package = ".".join(init.parent.relative_to(ROOT).parts)
        for match in re.finditer(r"^from (\S+) import (\w+)(?: as (\w+))?", init.read_text(), re.M):
            name = match.group(3) or match.group(2)
            module = f"{match.group(1)}.{match.group(2)}"
            is_module = (ROOT / pathlib.Path(*module.split("."))).exists() or (
                ROOT / pathlib.Path(*module.split("."))).with_suffix(".py").exists()
            if is_module or name.startswith("_"):
                continue
            if name not in leaves:
                missing.append(f"{package}.{name}")
    assert not missing, f"public names with no `:::` entry in docs/api/*.md: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_page_speaks_to_users(page):
    found = [
        f"{page.relative_to(ROOT)}:{number}: {line.strip()}"
        for number, line in enumerate(page.read_text().splitlines(), 1)
        if FORBIDDEN.search(line)
    ]
    assert not found, found


def test_python_blocks_are_found():
    """Python code is fenced as ```python at the start of a line, or it would not run."""
    for page in [*PAGES, ROOT / "README.md"]:
        for number, line in enumerate(page.read_text().splitlines(), 1):
            hidden = re.match(r"^\s+```", line) or re.match(r"^```(py|pycon|python3)\b", line)
            assert not hidden, f"{page.relative_to(ROOT)}:{number}: {line}"


PAGES_WITH_CODE = [page for page in PAGES if snippets.blocks(page)]


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=lambda p: str(p.relative_to(DOCS)))
def test_page_snippets_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, count = snippets.run_page(page)
    assert count == len(snippets.blocks(page)) > 0
