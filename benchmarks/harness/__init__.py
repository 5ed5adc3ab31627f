"""What every benchmark in `benchmarks/` shares: data, flags, result files, tables, plots, timing.

A benchmark is a script run as `python benchmarks/<name>.py`; this package sits
beside it and is imported as `import harness`. Import it before TensorFlow or
Keras: it quiets TensorFlow's C++ log lines, which must be set before
TensorFlow is loaded.

- **Data**: `load_fashion` / `load_fashion_split` (Fashion-MNIST from
  `keras_darn.datasets`, stratified subsets), `load_digits`, and
  `load_images`, which falls back from Fashion-MNIST to digits; `as_rgb`
  (gray images resized to three channels, for `keras.applications`).
- **Flags**: `define_output_flags` (`--output_dir`, default
  `benchmarks/results` of this checkout, and `--name`), `define_data_flag`,
  `define_seed_flag` / `define_seeds_flag`, `define_epochs_flag`,
  `define_quick_flag` with `apply_quick` (a small budget, written under
  `benchmarks/results/runs/`, which is not committed).
- **Results**: `result_prefix`, `write_json` / `read_json`, `write_markdown`,
  `markdown_table`, `describe_machine`. A benchmark commits one summary JSON,
  one markdown table and its plots; per-seed and exploratory runs go to
  `runs_dir()`.
- **Plots**: `figure`, `label_axes`, `save_figure` (matplotlib, no display).
- **Timing**: `median_seconds`, `interleaved_ratio`, `epoch_timer`.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before anything imports TensorFlow

from harness.paths import BENCHMARKS_DIR  # noqa: E402,F401
from harness.paths import REPO_DIR  # noqa: E402,F401
from harness.paths import RESULTS_DIR  # noqa: E402,F401
from harness.paths import RUNS_DIR  # noqa: E402,F401
from harness.paths import runs_dir  # noqa: E402,F401
from harness.options import FLAGS  # noqa: E402,F401
from harness.options import apply_quick  # noqa: E402,F401
from harness.options import define_data_flag  # noqa: E402,F401
from harness.options import define_epochs_flag  # noqa: E402,F401
from harness.options import define_output_flags  # noqa: E402,F401
from harness.options import define_quick_flag  # noqa: E402,F401
from harness.options import define_seed_flag  # noqa: E402,F401
from harness.options import define_seeds_flag  # noqa: E402,F401
from harness.options import seeds  # noqa: E402,F401
from harness.data import as_rgb  # noqa: E402,F401
from harness.data import load_digits  # noqa: E402,F401
from harness.data import load_fashion  # noqa: E402,F401
from harness.data import load_fashion_split  # noqa: E402,F401
from harness.data import load_images  # noqa: E402,F401
from harness.results import describe_machine  # noqa: E402,F401
from harness.results import markdown_table  # noqa: E402,F401
from harness.results import read_json  # noqa: E402,F401
from harness.results import result_prefix  # noqa: E402,F401
from harness.results import write_json  # noqa: E402,F401
from harness.results import write_markdown  # noqa: E402,F401
from harness.plots import figure  # noqa: E402,F401
from harness.plots import label_axes  # noqa: E402,F401
from harness.plots import save_figure  # noqa: E402,F401
from harness.timing import epoch_timer  # noqa: E402,F401
from harness.timing import interleaved_ratio  # noqa: E402,F401
from harness.timing import median_seconds  # noqa: E402,F401
