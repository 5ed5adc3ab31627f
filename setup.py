"""Packaging for keras_darn: `pip install .` or, for development, `pip install -e ".[test]"`."""

import os
import re

from setuptools import find_packages
from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))

# The CPU build of TensorFlow is enough, but pip does not count the
# `tensorflow-cpu` distribution as `tensorflow`: with `tensorflow>=2.18` it
# downloads the 572 MB `tensorflow` wheel even where tensorflow-cpu 2.21 is
# installed (checked with pip 26, TF 2.21). Setting
# KERAS_DARN_TENSORFLOW=tensorflow-cpu when installing makes the requirement
# `tensorflow-cpu>=2.18` instead; scripts/setup.sh does this.
TENSORFLOW_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu")
TENSORFLOW = os.environ.get("KERAS_DARN_TENSORFLOW") or "tensorflow"
if TENSORFLOW not in TENSORFLOW_DISTRIBUTIONS:
    raise ValueError(
        "Received an invalid value for the environment variable "
        f"`KERAS_DARN_TENSORFLOW`, expected one of {TENSORFLOW_DISTRIBUTIONS}. "
        f"Received: KERAS_DARN_TENSORFLOW={TENSORFLOW!r}"
    )


def read_version():
    with open(os.path.join(HERE, "keras_darn", "__init__.py")) as f:
        return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


def read_long_description():
    path = os.path.join(HERE, "README.md")
    if not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8") as f:
        return f.read()


setup(
    name="keras_darn",
    version=read_version(),
    description=(
        "Find the right width for every layer of a Keras model: remove and "
        "add neurons and filters during or between fits."
    ),
    long_description=read_long_description(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["keras_darn", "keras_darn.*"]),
    python_requires=">=3.10",
    install_requires=[
        "keras>=3.10",
        f"{TENSORFLOW}>=2.18",
        "absl-py",
        "tensorflow-datasets",
        "numpy",
        "scikit-learn",
        # The LiteRT interpreter, which replaces the deprecated tf.lite.Interpreter.
        "ai-edge-litert",
    ],
    extras_require={
        # The docs extra builds the documentation site (`mkdocs build --strict`);
        # the test run builds it too, so `test` includes it.
        # JAX (CPU) runs tests/backends, which compares the criteria under
        # KERAS_BACKEND=jax with TensorFlow's.
        "test": ["pytest", "pytest-xdist", "hypothesis", "import-linter",
                 "mkdocs", "mkdocs-material", "mkdocstrings[python]", "jax"],
        "docs": ["mkdocs", "mkdocs-material", "mkdocstrings[python]"],
        "benchmarks": ["matplotlib", "tqdm"],
        # The Keras 2 peer we benchmark against; only ever imported in its own
        # process by benchmarks/, never by keras_darn. Best installed in an
        # environment of its own: tf-keras 2.21 requires `tensorflow` (not
        # `tensorflow-cpu`) of the same minor version, and
        # tensorflow-model-optimization 0.8.1 pins absl-py~=1.2.
        "peer": ["tensorflow-model-optimization", "tf-keras"],
        # Rebuilder registrations for keras-hub's transformer layers (loaded
        # only when a model holds one). keras-hub 0.32 pulls tensorflow-text,
        # which requires the `tensorflow` distribution (not `tensorflow-cpu`).
        "hub": ["keras-hub"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Keras",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
