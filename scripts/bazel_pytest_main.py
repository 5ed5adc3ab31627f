"""Entry point of the Bazel `py_test` targets in BUILD: runs pytest on its arguments.

Bazel runs a `py_test` as a script; this hands the test file(s) to pytest so that
fixtures, parametrisation and tests/conftest.py work as with `python -m pytest`.
"""

import sys

import pytest

if __name__ == "__main__":
    sys.exit(pytest.main(sys.argv[1:]))
