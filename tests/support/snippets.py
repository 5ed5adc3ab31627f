"""Runs the Python code blocks of a markdown page, as a reader would.

Every fenced block opened by a line that is exactly ```` ```python ```` runs;
other blocks (```` ```bash ````, ```` ```text ````) do not. The blocks of one
page run in order in one namespace, so a later block uses what an earlier
one defined. A block may declare setup in an HTML comment on the lines just
before it (blank lines between are allowed), which the rendered page does
not show:

    <!-- setup: digits -->

runs the named setups of `SETUPS` (several: `<!-- setup: digits, trained -->`)
in the page's namespace before the block. Setups give small data (digits,
random tensors), so that every block runs in seconds.
"""

import dataclasses
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
_SETUP = re.compile(r"<!--\s*setup:\s*([\w\s,]+?)\s*-->\s*\Z")


@dataclasses.dataclass
class Block:
    """One ```python block: where it is, the setups it declares, its code."""

    path: pathlib.Path
    line: int
    setups: tuple
    code: str

    @property
    def where(self):
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path):
    """The ```python blocks of the markdown file `path`, in order."""
    path = pathlib.Path(path)
    text = path.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()]
        setup = _SETUP.search(before)
        names = tuple(n.strip() for n in setup.group(1).split(",")) if setup else ()
        unknown = [name for name in names if name not in SETUPS]
        if unknown:
            raise ValueError(
                f"{path}: unknown setup {unknown} before line {before.count(chr(10)) + 1}. "
                f"Known setups: {sorted(SETUPS)}"
            )
        found.append(Block(path, before.count("\n") + 2, names, match.group(1)))
    return found


def run_page(path, namespace=None):
    """Runs every ```python block of `path` in order, in one namespace.

    Returns:
        The namespace after the last block, and the number of blocks run.

    Raises:
        Whatever a block raises, with the page and line of the block in the
        traceback (the code is compiled under the name `page:line`).
    """
    namespace = {} if namespace is None else namespace
    page_blocks = blocks(path)
    for block in page_blocks:
        for name in block.setups:
            SETUPS[name](namespace)
        # Line numbers in a traceback then match the page.
        code = "\n" * (block.line - 1) + block.code
        exec(compile(code, str(block.path), "exec"), namespace)  # noqa: S102
    return namespace, len(page_blocks)


def markdown_pages():
    """README.md and every page under docs/, sorted."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


# Setups: each fills a page's namespace with what its blocks assume.


def _imports(namespace):
    exec(  # noqa: S102
        "import keras\nimport numpy as np\nimport tensorflow as tf\nimport keras_darn as darn\n",
        namespace,
    )


def _digits(namespace):
    """`x, y, x_val, y_val`: the digits as float vectors in [0, 1] (64 features)."""
    _imports(namespace)
    import keras_darn as darn

    (x, y), (x_val, y_val) = darn.datasets.load_digits()
    namespace.update(
        x=darn.datasets.to_float_vectors(x), y=y,
        x_val=darn.datasets.to_float_vectors(x_val), y_val=y_val,
    )


def _digits_images(namespace):
    """`x, y, x_val, y_val`: the digits as 8x8x1 float images in [0, 1]."""
    _imports(namespace)
    import keras_darn as darn

    (x, y), (x_val, y_val) = darn.datasets.load_digits()
    namespace.update(
        x=darn.datasets.to_float_images(x), y=y,
        x_val=darn.datasets.to_float_images(x_val), y_val=y_val,
    )


def _trained_mlp(namespace):
    """`model`: a compiled Dense 64-64-10 MLP ("hidden1", "hidden2") trained 3 epochs on `x, y`."""
    import keras

    model = keras.Sequential([
        keras.Input((namespace["x"].shape[1],)),
        keras.layers.Dense(64, activation="relu", name="hidden1"),
        keras.layers.Dense(64, activation="relu", name="hidden2"),
        keras.layers.Dense(10, activation="softmax", name="logits"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(namespace["x"], namespace["y"], epochs=3, batch_size=64, verbose=0)
    namespace["model"] = model


SETUPS = {
    "digits": _digits,
    "digits_images": _digits_images,
    "trained_mlp": _trained_mlp,
}
