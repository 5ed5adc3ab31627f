"""`examples/*.py --help` and `--helpfull`: the example's own flags, no TensorFlow flags or log lines."""

import glob
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = sorted(
    os.path.relpath(path, REPO) for path in glob.glob(os.path.join(REPO, "examples", "*.py"))
    if os.path.basename(path) != "cli.py"
)


def _run(script, flag):
    env = dict(os.environ, PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the example must quiet TensorFlow itself
    return subprocess.run([sys.executable, script, flag], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def test_every_example_is_listed():
    assert "examples/demo.py" in EXAMPLES and len(EXAMPLES) >= 7


def _check_help(script, flag):
    result = _run(script, flag)
    assert result.returncode in (0, 1), (script, result.stderr[-2000:])  # absl's --help: 1
    assert f"{script}:" in result.stdout, script  # the script's own section
    assert "--output_dir" in result.stdout or "--seed" in result.stdout, script
    sections = [line for line in result.stdout.splitlines() if line.endswith(":")
                and not line.startswith(" ")]
    assert not [s for s in sections if s.startswith(("tensorflow", "absl.testing"))], (
        script, sections)
    assert "tensorflow" not in result.stdout, script
    # No native start-up lines (oneDNN, CUDA probing) on the console.
    assert "I0000" not in result.stderr and "absl::InitializeLog" not in result.stderr, (
        script, result.stderr[-2000:])


@pytest.mark.parametrize("flag", ["--help", "--helpfull"])
def test_demo_help_lists_its_own_flags_only(flag):
    _check_help("examples/demo.py", flag)


@pytest.mark.slow
@pytest.mark.parametrize("flag", ["--help", "--helpfull"])
def test_every_examples_help_lists_its_own_flags_only(flag):
    for script in EXAMPLES:
        _check_help(script, flag)
