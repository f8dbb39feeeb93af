"""The generator sandbox: bubblewrap (bwrap), a scrubbed environment and resource limits.

Inside, the generator sees only: the system (/usr, a few /etc files, /sys), the interpreter and
the installed packages (read-only), its submission folder at /submission (read-only, the working
directory), the output folder at /out (writable), the class list and the helper at /bench
(read-only), a private /tmp, and — with --device cuda — the NVIDIA device nodes. No network
(own network namespace), own PID namespace (killing bwrap kills everything inside), uid 65534
and no capabilities.

Limits: open files, file size, no core dumps (rlimits); processes and threads through a pids
cgroup when the harness is root (RLIMIT_NPROC does not bind root-owned tasks), RLIMIT_NPROC
otherwise; the output folder lives on a tmpfs of the output cap when the harness can mount one,
and is polled against the cap in any case.
"""
from __future__ import annotations

import glob
import itertools
import os
import resource
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .console import warn
from .errors import UsageError

SANDBOX_UID = 65534  # "nobody" inside the sandbox
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "nsswitch.conf", "localtime", "passwd", "group",
             "hosts", "alternatives")
INSTALL_HINT = "install it with: sudo apt-get install -y bubblewrap (or run trusted generators with --no-sandbox)"
CGROUP_ROOTS = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup"))
_serial = itertools.count()


@dataclass(frozen=True)
class Limits:
    """The sandbox's resource limits; values from the protocol file (sandbox section)."""
    max_processes: int  # tasks: processes and threads
    max_open_files: int
    max_output_bytes: int


def bwrap_binary() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise UsageError(f"bubblewrap (bwrap) is not installed, and generators only run sandboxed; {INSTALL_HINT}")
    return path


class ProcessCap:
    """A pids cgroup holding the generator and everything it starts (root only)."""

    def __init__(self, limit: int):
        self.path: Path | None = None
        if os.geteuid() != 0:
            return
        for base in CGROUP_ROOTS:  # cgroup v1's pids hierarchy, or v2 with pids delegated
            path = base / f"ddbench-{os.getpid()}-{next(_serial)}"
            try:
                path.mkdir()
            except OSError:
                continue
            if (path / "pids.max").exists():
                (path / "pids.max").write_text(str(limit))
                self.path = path
                return
            path.rmdir()
        warn("no pids cgroup is available: the generator's process count is not limited")

    def join_file(self) -> str | None:
        return str(self.path / "cgroup.procs") if self.path else None

    def close(self) -> None:
        """Kill whatever is left in the cgroup, then remove it."""
        if self.path is None:
            return
        for _ in range(50):
            pids = [int(p) for p in _read(self.path / "cgroup.procs").split()]
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.path.rmdir()
        except OSError:
            pass


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _processes_of(uid: int) -> int:
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                count += entry.stat().st_uid == uid
            except OSError:
                pass
    return count


def preexec(limits: Limits, cgroup_procs: str | None):
    """Runs in the child between fork and exec: join the pids cgroup, set the rlimits."""
    nproc = None if os.geteuid() == 0 else _processes_of(os.getuid()) + limits.max_processes

    def apply() -> None:
        if cgroup_procs is not None:
            with open(cgroup_procs, "w") as f:
                f.write(str(os.getpid()))
        if nproc is not None:  # counts every process of the uid, so: what runs now + the allowance
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.max_open_files, limits.max_open_files))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_output_bytes, limits.max_output_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def mount_output(mount_point: Path, limits: Limits) -> bool:
    """A tmpfs of the output cap for the run folder (hard cap, ENOSPC); False where we cannot mount."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    opts = f"size={limits.max_output_bytes},mode=0755"
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "ddbench-out", str(mount_point)],
                          capture_output=True, timeout=30)
    return done.returncode == 0


def unmount_output(mount_point: Path) -> None:
    subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=30)


def _python_roots() -> list[str]:
    """The interpreter and installed packages: the base installation and the environment."""
    roots = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, sys.exec_prefix)}
    return sorted(r for r in roots if not any(r != o and r.startswith(o + os.sep) for o in roots))


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("bin", "lib", "lib64", "sbin", "lib32"):
        path = Path("/") / top
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in ETC_FILES:
        if (Path("/etc") / name).exists():
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    return args


def bwrap_command(argv: list[str], submission: Path, out: Path, bench_dir: Path, env: dict[str, str],
                  device: str) -> list[str]:
    """The bwrap command line that runs argv (paths inside: /submission, /out, /bench)."""
    cmd = [bwrap_binary(), "--unshare-all", "--die-with-parent", "--new-session", "--hostname", "sandbox",
           "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--cap-drop", "ALL", "--clearenv", *_system_binds(),
           # Mounts apply in order: the private /tmp first, so an environment installed under /tmp stays visible.
           "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--ro-bind", "/sys", "/sys"]
    for root in _python_roots():
        cmd += ["--ro-bind", root, root]
    cmd += ["--ro-bind", str(submission), "/submission", "--bind", str(out), "/out", "--ro-bind", str(bench_dir), "/bench"]
    if device.startswith("cuda"):
        for node in sorted(glob.glob("/dev/nvidia*")):
            cmd += ["--dev-bind", node, node]
        if Path("/proc/driver/nvidia").exists():
            cmd += ["--ro-bind", "/proc/driver/nvidia", "/proc/driver/nvidia"]
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    return [*cmd, "--chdir", "/submission", "--", *argv]
