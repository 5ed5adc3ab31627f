#!/usr/bin/env bash
# Runs Debian's Bazel 4 (package bazel-bootstrap) on this repository offline, e.g.
#   bash scripts/bazel.sh build //...
#   bash scripts/bazel.sh test //:tests/datasets/test_idx
#
# Bazel 4 fetches rules_cc, platforms, rules_java and remote_coverage_tools from the
# network even for Python-only targets. Offline, they come from Debian packages instead
# (bazel-rules-cc, bazel-platforms, bazel-rules-java) through --override_repository.
# Two workarounds are generated under ~/.cache/keras_darn/bazel:
#   - Debian's rules_cc is newer than its bazel-bootstrap 4.2.3 and loads
#     `use_cpp_toolchain`, which Bazel 4 lacks; a copy is patched to name the C++
#     toolchain type directly.
#   - remote_coverage_tools has no Debian package; a stub with no-op binaries stands in
#     (coverage is not supported this way).
# Tests run with .venv's python3 (first on the test PATH), so run scripts/setup.sh once.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

missing=()
command -v bazel >/dev/null 2>&1 || missing+=(bazel-bootstrap)
[ -d /usr/share/bazel/rules/cc ] || missing+=(bazel-rules-cc)
[ -d /usr/share/bazel/tools/platforms ] || missing+=(bazel-platforms)
[ -d /usr/share/bazel/rules/java ] || missing+=(bazel-rules-java)
if [ ${#missing[@]} -gt 0 ]; then
  echo "Missing Debian packages: ${missing[*]}. Install them with: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
if [ ! -x .venv/bin/python3 ]; then
  echo "No .venv: run 'bash scripts/setup.sh' first (the tests need its TensorFlow)." >&2
  exit 1
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/keras_darn/bazel"
rules_cc="$cache/rules_cc"
if [ ! -f "$rules_cc/.patched" ]; then
  rm -rf "$rules_cc" && mkdir -p "$cache" && cp -r /usr/share/bazel/rules/cc "$rules_cc"
  sed -i 's/, "use_cpp_toolchain")/)/; s|toolchains = use_cpp_toolchain(),.*|toolchains = ["@bazel_tools//tools/cpp:toolchain_type"],|' \
    "$rules_cc/cc/private/rules_impl/cc_flags_supplier.bzl" \
    "$rules_cc/cc/private/rules_impl/compiler_flag.bzl"
  touch "$rules_cc/.patched"
fi
coverage_stub="$cache/remote_coverage_tools"
if [ ! -f "$coverage_stub/BUILD" ]; then
  mkdir -p "$coverage_stub"
  touch "$coverage_stub/WORKSPACE"
  printf '#!/bin/sh\nexit 0\n' > "$coverage_stub/noop.sh" && chmod +x "$coverage_stub/noop.sh"
  cat > "$coverage_stub/BUILD" <<'BUILD_FILE'
sh_binary(name = "coverage_report_generator", srcs = ["noop.sh"], visibility = ["//visibility:public"])
sh_binary(name = "lcov_merger", srcs = ["noop.sh"], visibility = ["//visibility:public"])
BUILD_FILE
fi

command="$1"
shift
exec bazel "$command" \
  --override_repository=rules_cc="$rules_cc" \
  --override_repository=platforms=/usr/share/bazel/tools/platforms \
  --override_repository=rules_java=/usr/share/bazel/rules/java \
  --override_repository=remote_coverage_tools="$coverage_stub" \
  --test_env=PATH="$repo_root/.venv/bin:/usr/bin:/bin" \
  --test_env=TF_CPP_MIN_LOG_LEVEL=2 \
  --local_test_jobs=1 \
  "$@"
