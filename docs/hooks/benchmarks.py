"""MkDocs hook: publishes benchmarks/README.md and benchmarks/results/ in the site.

The measured results live beside the scripts that measure them, outside
`docs/`; this hook adds them to the site under `benchmarks/`, so the docs
link to them (`../benchmarks/results/nodedrop.md` from a method page) and
the strict build checks those links. The scripts are published too, so
that the README's links to them resolve. Per-run outputs (`results/runs/`,
`results/tmp/`) are left out.
"""

import pathlib

from mkdocs.structure.files import File

PUBLISHED = (".md", ".png", ".svg", ".json")


def on_files(files, config):
    root = pathlib.Path(config["config_file_path"]).parent
    benchmarks = root / "benchmarks"
    sources = [benchmarks / "README.md"]
    sources += sorted(
        path for path in (benchmarks / "results").glob("*") if path.suffix in PUBLISHED
    )
    sources += sorted(benchmarks.glob("*.py")) + sorted((benchmarks / "peers").glob("*.py"))
    for path in sources:
        if path.is_file():
            files.append(
                File(
                    str(path.relative_to(root)),
                    src_dir=str(root),
                    dest_dir=config["site_dir"],
                    use_directory_urls=config["use_directory_urls"],
                )
            )
    return files
