"""The one-line description of this machine that every benchmark records."""

import os
import platform


def describe():
    """`"x86_64, 2 CPUs, Python 3.11.7, Keras 3.15.1"` for the running process."""
    import keras

    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"Keras {keras.__version__}"
    )
