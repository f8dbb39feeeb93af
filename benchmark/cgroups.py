"""The generator's cgroups (root only): a cap on its tasks (pids) and on the memory of its whole
process tree (memory), on cgroup v2's unified tree or v1's pids/ and memory/ hierarchies; the CPU
time of the tree (v2's cpu.stat, v1's cpuacct/); killing everything in them; and removing them,
with any failure reported rather than ignored."""
from __future__ import annotations

import itertools
import os
import re
import signal
import time
from pathlib import Path

from .console import warn

CGROUP_ROOT = Path("/sys/fs/cgroup")
PREFIX = "ddbench-"  # cgroups ddbench-<harness pid>-<n>
_serial = itertools.count()


def hierarchies() -> dict[str, Path]:
    """Where to make cgroups per controller: cgroup v2's unified tree (whose every cgroup counts
    its CPU time), or v1's pids/, memory/ and cpuacct/."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return {"pids": CGROUP_ROOT, "memory": CGROUP_ROOT}
    return {c: CGROUP_ROOT / c for c in ("pids", "memory", "cpuacct") if (CGROUP_ROOT / c / "cgroup.procs").exists()}


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
        return True
    except OSError:
        return False


def read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


class Cgroups:
    """The generator's cgroups (root only): the task and memory caps, killing, and clean-up."""

    def __init__(self, limits):
        self.paths: dict[str, Path] = {}
        if os.geteuid() != 0:
            return
        name = f"{PREFIX}{os.getpid()}-{next(_serial)}"
        for controller, parent in hierarchies().items():
            path = parent / name
            try:
                path.mkdir(exist_ok=True)
            except OSError:
                continue
            if self._limit(controller, path, limits):
                self.paths[controller] = path
            elif path not in self.paths.values():
                remove(path)

    @staticmethod
    def _limit(controller: str, path: Path, limits) -> bool:
        if controller == "pids":
            return _write(path / "pids.max", str(limits.max_processes))
        if controller == "cpuacct":  # counts only
            return (path / "cpuacct.usage").exists()
        if (path / "memory.max").exists():  # v2; no swap, so the cap is real memory
            return _write(path / "memory.max", str(limits.max_memory_bytes)) and \
                (_write(path / "memory.swap.max", "0") or not (path / "memory.swap.max").exists())
        ok = _write(path / "memory.limit_in_bytes", str(limits.max_memory_bytes))
        if (path / "memory.memsw.limit_in_bytes").exists():  # v1 with swap accounting
            ok = ok and _write(path / "memory.memsw.limit_in_bytes", str(limits.max_memory_bytes))
        return ok

    @property
    def caps_memory(self) -> bool:
        return "memory" in self.paths

    @property
    def caps_processes(self) -> bool:
        return "pids" in self.paths

    def cpu_seconds(self) -> float | None:
        """CPU time the generator's process tree used (None: no cgroup counts it)."""
        if "cpuacct" in self.paths:
            text = read_text(self.paths["cpuacct"] / "cpuacct.usage").strip()
            return int(text) / 1e9 if text.isdigit() else None
        for path in self.paths.values():
            match = re.search(r"^usage_usec (\d+)", read_text(path / "cpu.stat"), re.M)
            if match:
                return int(match.group(1)) / 1e6
        return None

    def join_files(self) -> list[str]:
        return sorted({str(p / "cgroup.procs") for p in self.paths.values()})

    def oom_kills(self) -> int:
        """How many processes the kernel killed for crossing the memory cap."""
        path = self.paths.get("memory")
        if path is None:
            return 0
        text = read_text(path / "memory.events") or read_text(path / "memory.oom_control")
        match = re.search(r"^oom_kill (\d+)", text, re.M)
        return int(match.group(1)) if match else 0

    def kill(self) -> None:
        for path in self.paths.values():
            _kill_members(path)

    def close(self) -> None:
        """Kill whatever is left, then remove the cgroups; a failure is reported, not ignored."""
        for path in dict.fromkeys(self.paths.values()):
            problem = remove(path)
            if problem:
                warn(problem)
        self.paths = {}


def _kill_members(path: Path, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pids = [int(p) for p in read_text(path / "cgroup.procs").split()]
        if not pids:
            return True
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    return False


def remove(path: Path) -> str | None:
    """Kill a cgroup's members and remove it; returns a problem, or None."""
    if not _kill_members(path):
        return f"cgroup {path}: processes survived SIGKILL for 10 s; remove it by hand (rmdir) when they are gone"
    for _ in range(100):  # the kernel releases a cgroup shortly after its last task exits
        try:
            path.rmdir()
            return None
        except FileNotFoundError:
            return None
        except OSError:
            time.sleep(0.05)
    return f"cgroup {path}: could not be removed; remove it by hand (rmdir {path})"
