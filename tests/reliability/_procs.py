"""Real ``ragnest`` processes for the reliability suite: start, find children, kill, compare."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "alive",
    "children",
    "cmdline",
    "kill_all",
    "measured_ragnest",
    "ragnest_cmd",
    "start_ragnest",
    "wait_for",
    "wait_gone",
]

REPO = Path(__file__).resolve().parents[2]


def ragnest_cmd() -> list[str]:
    """The ``ragnest`` command of this checkout (``python -m ragnest.cli``)."""
    return [sys.executable, "-m", "ragnest.cli"]


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO), **(extra or {})}


def start_ragnest(args: Sequence[str], *, stdout: int | None = subprocess.PIPE,
                  env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``ragnest ARGS`` in a new session (its own process group), stdout/stderr piped."""
    return subprocess.Popen([*ragnest_cmd(), *args], stdout=stdout, stderr=subprocess.PIPE,
                            env=_env(env), cwd=REPO, start_new_session=True)


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses
    return raw[raw.rindex(")") + 2:].split()


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def children(pid: int) -> list[int]:
    """Live direct children of ``pid`` (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and fields[0] != "Z" and int(fields[1]) == pid:
                out.append(int(entry))
    return sorted(out)


def workers(pid: int) -> list[int]:
    """Live parser workers of the ingest ``pid``: its children, less multiprocessing's
    resource tracker (spawned workers run ``spawn_main``, forked ones the parent's
    command line)."""
    return [p for p in children(pid) if "resource_tracker" not in cmdline(p)]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def wait_for(predicate, timeout: float, step: float = 0.05) -> bool:  # noqa: ANN001
    """Poll ``predicate()`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def wait_gone(pids: Sequence[int], timeout: float) -> list[int]:
    """The pids still alive after waiting up to ``timeout`` seconds for all to end."""
    wait_for(lambda: not any(alive(p) for p in pids), timeout)
    return [p for p in pids if alive(p)]


def kill_all(pids: Sequence[int]) -> None:
    """Clean up after a failed test: SIGKILL whatever of ``pids`` is still alive."""
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


_MEASURE = """
import json, resource, runpy, sys
sys.argv = ["ragnest", *json.loads(sys.argv[1])]
code = 0
try:
    runpy.run_module("ragnest.cli", run_name="__main__")
except SystemExit as end:
    code = end.code if isinstance(end.code, int) else 1
# VmHWM is this process's own peak (ru_maxrss may carry the forking parent's over exec)
with open("/proc/self/status") as fh:
    me = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"code": code, "self_kib": me, "children_kib": kids}), file=sys.stderr)
sys.exit(code)
"""


def measured_ragnest(args: Sequence[str], *, timeout: float = 600) -> tuple[int, bytes, dict]:
    """Run ``ragnest ARGS`` to the end in a fresh process; returns (exit code, stdout,
    peak memory: ``{"self_mb"}`` the process's own peak RSS (``VmHWM``), ``{"workers_mb"}``
    the largest parser worker's (``getrusage(RUSAGE_CHILDREN)``), plus ``"stderr"``)."""
    import json

    proc = subprocess.run([sys.executable, "-c", _MEASURE, json.dumps(list(args))],
                          capture_output=True, env=_env(), cwd=REPO, timeout=timeout)
    last = proc.stderr.decode(errors="replace").strip().splitlines()[-1]
    usage = json.loads(last)
    return proc.returncode, proc.stdout, {"self_mb": usage["self_kib"] / 1024,
                                          "workers_mb": usage["children_kib"] / 1024,
                                          "stderr": proc.stderr.decode(errors="replace")}
