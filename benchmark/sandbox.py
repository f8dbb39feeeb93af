"""The generator sandbox: bubblewrap (bwrap), a scrubbed environment and a cap on every resource.

Inside, the generator sees only: the system (/usr, a few /etc files, the CPU topology in /sys),
the interpreter and the installed packages (read-only), its submission folder at /submission
(read-only, the working directory), the output folder at /out (writable), the class list and the
helper at /bench (read-only), a private /tmp and /dev/shm, and — with --device cuda — the NVIDIA
device nodes and the /sys parts the driver reads. No network (own network namespace), own PID
namespace, no nested user namespaces (bwrap --disable-userns), no capabilities.

Who it runs as: bwrap is started unprivileged, so the generator is an unprivileged host user —
uid 65534 ("nobody") when the harness is root (it drops to that uid first; the interpreter and the
submission folder are bind-mounted to a traversable staging folder in a private mount namespace,
so a checkout under /root or a 0700 temp folder still works), the harness's own user otherwise.

Limits (protocol values, `sandbox` section): memory of the whole process tree with /tmp and
/dev/shm counted (a memory cgroup; RLIMIT_AS per process where no cgroup can be made), tasks (a
pids cgroup; RLIMIT_NPROC otherwise), open files, file size, output size (a tmpfs of the cap when
the harness can mount one, plus polling), no core dumps; time is kept by the generation runner.
A killed harness leaves cgroups, mounts and temp folders behind: `cleanup_stale` removes them at
the next start and reports what it could not remove.
"""
from __future__ import annotations

import ctypes
import glob
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import cgroups
from .cgroups import PREFIX
from .errors import UsageError

SANDBOX_UID = 65534  # "nobody": the uid inside, and outside when the harness is root
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "nsswitch.conf", "localtime", "passwd", "group",
             "hosts", "alternatives")
SYS_CPU = ("/sys/devices/system/cpu", "/sys/devices/system/node")  # thread counts, NUMA
SYS_CUDA = ("/sys/devices", "/sys/bus", "/sys/class", "/sys/module")  # PCI topology, driver version
INSTALL_HINT = "install it with: sudo apt-get install -y bubblewrap (or run trusted generators with --no-sandbox)"
TEMP_PREFIX = f"{PREFIX}gen-"  # temp folders ddbench-gen-<harness pid>-…
OUTPUT_FS = "ddbench-out"  # the source name of output tmpfs mounts


@dataclass(frozen=True)
class Limits:
    """The sandbox's resource limits; values from the protocol file (sandbox section)."""
    max_processes: int  # tasks: processes and threads
    max_open_files: int
    max_output_bytes: int
    max_memory_bytes: int  # the whole process tree, /tmp and /dev/shm included
    max_tmp_bytes: int  # size of /tmp and of /dev/shm (each a tmpfs, also counted as memory)


def bwrap_binary() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise UsageError(f"bubblewrap (bwrap) is not installed, and generators only run sandboxed; {INSTALL_HINT}")
    return path


def temp_folder() -> tempfile.TemporaryDirectory:
    """A run's work folder, named after this process so that a later start can clean it up."""
    return tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}{os.getpid()}-")


# -- what a killed harness left behind ------------------------------------------------------------

def _dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _owner(name: str, prefix: str) -> int | None:
    match = re.match(rf"{re.escape(prefix)}(\d+)-", name)
    return int(match.group(1)) if match else None


def cleanup_stale() -> list[str]:
    """Remove the cgroups, output mounts and temp folders of harness processes that are gone.
    Returns what could not be removed (each line says how to remove it by hand)."""
    problems = []
    for parent in dict.fromkeys(cgroups.hierarchies().values()):
        for path in parent.glob(f"{PREFIX}*"):
            owner = _owner(path.name, PREFIX)
            if path.is_dir() and owner is not None and _dead(owner):
                problems += [p for p in [cgroups.remove(path)] if p]
    temp = Path(tempfile.gettempdir())
    for line in cgroups.read_text(Path("/proc/self/mounts")).splitlines():
        fields = line.split()
        if len(fields) > 1 and fields[0] == OUTPUT_FS:
            point = fields[1].encode().decode("unicode_escape")
            owner = next((_owner(part, TEMP_PREFIX) for part in Path(point).parts if part.startswith(TEMP_PREFIX)), None)
            if owner is not None and _dead(owner):
                problem = unmount_output(Path(point))
                problems += [problem] if problem else []
    for folder in temp.glob(f"{TEMP_PREFIX}*"):
        owner = _owner(folder.name, TEMP_PREFIX)
        if owner is not None and _dead(owner):
            shutil.rmtree(folder, ignore_errors=True)
            if folder.exists():
                problems.append(f"{folder}: a stale work folder could not be removed; remove it by hand")
    return problems


# -- the output folder ---------------------------------------------------------------------------

def mount_output(mount_point: Path, limits: Limits) -> bool:
    """A tmpfs of the output cap for the run folder (hard cap, ENOSPC); False where we cannot mount."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    opts = f"size={limits.max_output_bytes},mode=0755"
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, OUTPUT_FS, str(mount_point)],
                          capture_output=True, timeout=30)
    return done.returncode == 0


def unmount_output(mount_point: Path) -> str | None:
    done = subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        return f"{mount_point}: could not unmount the output tmpfs ({done.stderr.strip()}); run: umount -l {mount_point}"
    return None


def used_bytes(mount_point: Path) -> int:
    """Bytes used on a mounted output tmpfs, in constant time whatever the generator wrote."""
    st = os.statvfs(mount_point)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


# -- between fork and exec -------------------------------------------------------------------------

_CLONE_NEWNS, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x00020000, 4096, 16384, 1 << 18


def _libc_call(name: str, *args) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, name)(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")


@dataclass(frozen=True)
class Launch:
    """What the child does between fork and exec of bwrap."""
    limits: Limits
    join: tuple[str, ...]  # cgroup.procs files
    memory_rlimit: bool  # RLIMIT_AS as the (per-process) fallback memory cap
    nproc_rlimit: bool  # RLIMIT_NPROC as the fallback task cap
    stage: tuple[tuple[str, str], ...] = ()  # (source, staging point): bind mounts, private namespace
    drop_to: int | None = None  # the host uid (and gid) to become before bwrap

    def preexec(self):
        uid = os.getuid() if self.drop_to is None else self.drop_to
        nproc = _processes_of(uid) + self.limits.max_processes if self.nproc_rlimit else None

        def apply() -> None:
            for path in self.join:
                with open(path, "w") as f:
                    f.write(str(os.getpid()))
            if self.stage:
                _libc_call("unshare", _CLONE_NEWNS)
                _libc_call("mount", b"none", b"/", None, _MS_REC | _MS_PRIVATE, None)
                for source, point in self.stage:
                    _libc_call("mount", source.encode(), point.encode(), None, _MS_BIND | _MS_REC, None)
            rlimits = {resource.RLIMIT_NOFILE: self.limits.max_open_files,
                       resource.RLIMIT_FSIZE: self.limits.max_output_bytes, resource.RLIMIT_CORE: 0}
            if self.memory_rlimit:
                rlimits[resource.RLIMIT_AS] = self.limits.max_memory_bytes
            if nproc is not None:  # counts every process of the uid: what runs now + the allowance
                rlimits[resource.RLIMIT_NPROC] = nproc
            for kind, value in rlimits.items():
                resource.setrlimit(kind, (value, value))
            if self.drop_to is not None:
                os.setgroups([])
                os.setgid(self.drop_to)
                os.setuid(self.drop_to)

        return apply


def _processes_of(uid: int) -> int:
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                count += entry.stat().st_uid == uid
            except OSError:
                pass
    return count


# -- the bwrap command line ------------------------------------------------------------------------

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


@dataclass
class Mounts:
    """The host folders a sandbox shows: the environment, the submission, the output and /bench.
    `sources` maps each to where bwrap reads it (a staging point when the harness is root)."""
    submission: Path
    out: Path
    bench: Path
    sources: dict[str, str] = field(default_factory=dict)
    stage: list[tuple[str, str]] = field(default_factory=list)

    def source(self, path: str) -> str:
        return self.sources.get(path, path)


def plan_mounts(submission: Path, out: Path, bench: Path, staging: Path | None) -> Mounts:
    """With a staging folder (root), the environment and the submission are bind-mounted there in
    the child's private mount namespace, so the unprivileged bwrap can reach them."""
    mounts = Mounts(submission, out, bench)
    if staging is None:
        return mounts
    staging.mkdir(mode=0o755)
    for i, path in enumerate([*_python_roots(), str(submission)]):
        point = staging / str(i)
        point.mkdir(mode=0o755)
        mounts.sources[path] = str(point)
        mounts.stage.append((path, str(point)))
    return mounts


def bwrap_command(argv: list[str], mounts: Mounts, env: dict[str, str], device: str, limits: Limits) -> list[str]:
    """The bwrap command line that runs argv (paths inside: /submission, /out, /bench)."""
    cmd = [bwrap_binary(), "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
           "--new-session", "--hostname", "sandbox", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
           "--cap-drop", "ALL", "--clearenv", *_system_binds(),
           # Mounts apply in order: the private /tmp first, so an environment installed under /tmp stays visible.
           "--proc", "/proc", "--dev", "/dev", "--size", str(limits.max_tmp_bytes), "--tmpfs", "/tmp",
           "--size", str(limits.max_tmp_bytes), "--tmpfs", "/dev/shm"]
    for path in SYS_CPU + (SYS_CUDA if device.startswith("cuda") else ()):
        if Path(path).exists():
            cmd += ["--ro-bind", path, path]
    for root in _python_roots():
        cmd += ["--ro-bind", mounts.source(root), root]
    cmd += ["--ro-bind", mounts.source(str(mounts.submission)), "/submission", "--bind", str(mounts.out), "/out",
            "--ro-bind", str(mounts.bench), "/bench"]
    if device.startswith("cuda"):
        for node in sorted(glob.glob("/dev/nvidia*")):
            cmd += ["--dev-bind", node, node]
        if Path("/proc/driver/nvidia").exists():
            cmd += ["--ro-bind", "/proc/driver/nvidia", "/proc/driver/nvidia"]
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    return [*cmd, "--chdir", "/submission", "--", *argv]
