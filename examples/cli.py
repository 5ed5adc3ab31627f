"""What every example script shares: a quiet console and a `--help` of the example's own flags.

Import it first in an example (`import cli`), before Keras or keras_darn:
it imports TensorFlow with its native start-up log lines (oneDNN, CUDA
probing), which ignore `TF_CPP_MIN_LOG_LEVEL`, sent away from the console,
and sets TensorFlow's and absl's Python loggers to warnings and errors.
`cli.run(main)` replaces `absl.app.run(main)`: `--help` and `--helpfull`
list the example's own flags (and absl's few), not the dozens of flags that
TensorFlow's modules define. `cli.quiet()` silences a block that writes
native log lines, such as a TFLite conversion.
"""

import contextlib
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def quiet():
    """Sends what is written to the process's stderr (fd 2) to a temporary file while the block runs.

    Native code (TensorFlow's C++ logging, the TFLite converter) writes to
    fd 2 directly, past `sys.stderr`. If the block raises, what it wrote is
    replayed on stderr, so an error is never hidden.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                sink.seek(0)
                sys.stderr.write(sink.read().decode(errors="replace"))


with quiet():
    import tensorflow as tf  # noqa: E402
    import keras  # noqa: E402,F401

    tf.config.list_physical_devices()  # device probing (CUDA) logs natively on first use

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

tf.get_logger().setLevel("ERROR")
logging.set_verbosity(logging.WARNING)  # the TFLite converter logs at INFO

_OWN_MODULES = ("absl.app", "absl.logging")


def _parse(argv):
    if any(arg.lstrip("-") == "helpfull" for arg in argv[1:]):
        app.usage(shorthelp=True, writeto_stdout=True)
        for module in _OWN_MODULES:
            help_text = flags.FLAGS.module_help(module)
            if help_text:
                print(help_text)
        sys.exit(0)
    return app.parse_flags_with_usage(argv)


def run(main):
    """`absl.app.run(main)`, with `--help`/`--helpfull` listing the script's own flags only."""
    app.run(main, flags_parser=_parse)
