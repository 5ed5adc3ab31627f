"""Flags every benchmark shares (absl), and the `--quick` budget."""

from absl import flags

from harness.paths import RESULTS_DIR
from harness.paths import runs_dir

FLAGS = flags.FLAGS


def define_output_flags(name):
    """Defines `--output_dir` (default `benchmarks/results`) and `--name` (default `name`).

    Args:
        name: the benchmark's name, the prefix of its result files.
    """
    flags.DEFINE_string("output_dir", RESULTS_DIR,
                        "Where the results are written. Defaults to benchmarks/results of this checkout.")
    flags.DEFINE_string("name", name, "Prefix of the result files.")


def define_data_flag():
    """Defines `--data_dir`: the directory with the Fashion-MNIST IDX files."""
    flags.DEFINE_string(
        "data_dir", None,
        "Directory with the Fashion-MNIST IDX files. Defaults to the places keras_darn.datasets searches.")


def define_seed_flag(default=0):
    """Defines `--seed`, one integer."""
    flags.DEFINE_integer("seed", default, "Random seed.")


def define_seeds_flag(default, name="seeds", help_text="Seeds, one run each."):
    """Defines a list-of-integers flag (`--seeds` unless `name` says otherwise)."""
    flags.DEFINE_list(name, [str(s) for s in default], help_text)


def define_epochs_flag(default, name="epochs", help_text="Training epochs."):
    """Defines an integer epochs flag (`--epochs` unless `name` says otherwise)."""
    flags.DEFINE_integer(name, default, help_text)


def define_quick_flag():
    """Defines `--quick`: a tiny budget to check that the benchmark runs, results under `runs/`."""
    flags.DEFINE_bool(
        "quick", False,
        "Smoke run: a tiny budget, results written under benchmarks/results/runs/quick "
        "(not the committed results).")


def apply_quick(overrides, flag_values=None):
    """Under `--quick`, sets the flags in `overrides` (those not given on the command line).

    Also moves `--output_dir` to `runs_dir("quick")` unless it was given, so
    a smoke run never overwrites the committed results.

    Args:
        overrides: `{flag_name: value}`, the budget of a quick run.
        flag_values: the parsed flags. Defaults to `None` (`absl.flags.FLAGS`).

    Returns:
        `True` when `--quick` is set, else `False` (nothing changed).
    """
    values = FLAGS if flag_values is None else flag_values
    if "quick" not in values or not values.quick:
        return False
    for key, value in overrides.items():
        if not values[key].present:
            values[key].value = value
    if "output_dir" in values and not values["output_dir"].present:
        values.output_dir = runs_dir("quick")
    return True


def seeds(name="seeds"):
    """The integers of a list flag defined by `define_seeds_flag`."""
    return [int(s) for s in FLAGS[name].value]
