"""The package layout holds: layering, module sizes, graph internals, public names."""

import ast
import os
import pathlib
import re
import subprocess
import sys

import keras_darn as darn

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "keras_darn"
GRAPH_INTERNALS = re.compile(r"\._nodes_by_depth|\._inbound_nodes|\._keras_history|\._functional\b")


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def test_import_linter_contracts_are_kept():
    lint_imports = pathlib.Path(sys.executable).with_name("lint-imports")
    completed = subprocess.run(
        [str(lint_imports), "--config", str(ROOT / ".importlinter")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]
    assert "6 kept, 0 broken" in completed.stdout


def _imported_modules(node):
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module]
    return []


def test_no_keras_darn_module_is_imported_inside_a_function():
    # An import inside a function hides an edge from the layering contracts.
    inside = []
    for path in _modules():
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                inside += [f"{path.relative_to(ROOT)}:{node.lineno} {name}"
                           for name in _imported_modules(node) if name.split(".")[0] == "keras_darn"]
    assert not inside, inside


def test_no_module_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in _modules()
            if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long


def test_only_graph_reads_keras_graph_internals():
    readers = [str(p.relative_to(ROOT)) for p in _modules()
               if "graph" not in p.relative_to(PACKAGE).parts[:1]
               and GRAPH_INTERNALS.search(p.read_text())]
    assert not readers, readers


def test_core_names_no_method_or_method_layer():
    # Layers describe themselves through `graph.register_layer`; the core
    # that reads the descriptions never names a method or one of its layers.
    names = re.compile(r"Standout|standout|NodeDrop|nodedrop|Prunable|clamped_relu")
    offenders = {}
    for folder in ("graph", "rebuild", "metrics"):
        for path in (PACKAGE / folder).rglob("*.py"):
            found = sorted(set(names.findall(path.read_text())))
            if found:
                offenders[str(path.relative_to(ROOT))] = found
    assert not offenders, offenders


def test_top_level_names_are_few():
    names = [n for n in dir(darn) if not n.startswith("_")]
    assert len(names) <= 30, names
    for name in ("prepare", "resize", "Target", "Schedule", "Result", "Rebuilder",
                 "remove_units", "add_units", "insert_layer", "shrink", "unit_groups",
                 "count_params", "count_flops", "methods", "schedules"):
        assert name in names


def _traced_default_path():
    """The package's files outside graph/ and rebuild/ that the default method runs."""
    import keras
    import numpy as np

    model = keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.BatchNormalization(), keras.layers.Flatten(),
        keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3),
    ])
    x = np.random.default_rng(0).random((32, 8, 8, 1)).astype("float32")
    y = np.arange(32) % 3
    files = set()

    def profile(frame, event, arg):
        if event == "call" and frame.f_code.co_filename.startswith(str(PACKAGE)):
            files.add(pathlib.Path(frame.f_code.co_filename).relative_to(ROOT).as_posix())

    sys.setprofile(profile)
    try:
        pruned, callback = darn.prepare(model, "magnitude", darn.Target(flops=0.5))
        pruned.compile("adam", "sparse_categorical_crossentropy")
        pruned.fit(x, y, epochs=2, verbose=0, callbacks=[callback])
        callback.finish()
    finally:
        sys.setprofile(None)
    return {f for f in files if not f.startswith(("keras_darn/graph/", "keras_darn/rebuild/"))}


def test_the_architecture_page_lists_the_default_methods_path():
    page = (ROOT / "docs" / "architecture.md").read_text()
    listed = page.split("<!-- default-path:start -->")[1].split("<!-- default-path:end -->")[0]
    assert set(re.findall(r"^- `([^`]+)`", listed, re.M)) == _traced_default_path()
