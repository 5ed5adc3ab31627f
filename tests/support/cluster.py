"""Starts `tests/distributed/worker.py` processes on 127.0.0.1 and stops them, bounded in time."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORKER = REPO / "tests" / "distributed" / "worker.py"


def free_ports(count):
    """`count` ports that were free a moment ago (bound to port 0, then released)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _environment(tf_config):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["CUDA_VISIBLE_DEVICES"] = ""
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def start(out, arguments, workers=2):
    """Starts `workers` worker processes (one process, no strategy, for `workers=0`).

    Each writes into `out/worker<i>` (the reference run into `out/reference`)
    and logs to `<that directory>.log`.

    Returns:
        The list of `subprocess.Popen`, worker 0 (the chief) first.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if workers == 0:
        plan = [("reference", None)]
    else:
        addresses = [f"127.0.0.1:{port}" for port in free_ports(workers)]
        plan = [
            (f"worker{i}", {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": i}})
            for i in range(workers)
        ]
    processes = []
    for name, tf_config in plan:
        log = open(out / f"{name}.log", "w")
        command = [sys.executable, str(WORKER), "--out", str(out / name), "--name", name, *arguments]
        processes.append(subprocess.Popen(
            command, env=_environment(tf_config), stdout=log, stderr=subprocess.STDOUT,
            cwd=str(REPO), start_new_session=True,
        ))
        processes[-1].log_path = out / f"{name}.log"
    return processes


def kill(process):
    """Kills a worker (and anything it started) at once."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=30)


def _tail(process, lines=25):
    try:
        text = Path(process.log_path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def wait(processes, timeout):
    """Waits for every process to exit 0; kills all and raises on failure or timeout."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            codes = [p.poll() for p in processes]
            failed = [p for p, c in zip(processes, codes) if c not in (None, 0)]
            if failed:
                raise AssertionError(
                    f"a worker failed (exit {failed[0].returncode}):\n{_tail(failed[0])}"
                )
            if all(c == 0 for c in codes):
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"workers still running after {timeout} s:\n"
                    + "\n---\n".join(_tail(p) for p in processes)
                )
            time.sleep(0.2)
    finally:
        for p in processes:
            kill(p)


def wait_for(predicate, processes, timeout):
    """Waits until `predicate()`; kills the processes and raises after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
            for p in processes:
                kill(p)
            raise AssertionError(
                "the awaited training state never came:\n"
                + "\n---\n".join(_tail(p) for p in processes)
            )
        time.sleep(0.1)
