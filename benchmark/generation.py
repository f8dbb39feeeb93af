"""The generative track: run a generator in the sandbox against the clock.

The clock starts when the process is spawned and covers interpreter start, imports, model
loading, generation and saving. The main thread only waits for the process with the deadline as
timeout, so nothing a generator does can delay the clock; the output cap is watched by another
thread. At the deadline the whole process tree is killed, then the shards are read: a shard counts
only if it was complete (renamed to shard-NNNNN.safetensors) before the deadline, which the
kernel's change time of the file tells, and the generator is dead by then, so it cannot touch
them any more; each shard's completion time is kept (the anytime curve). `shards.collect` turns
them into an image set.

`clocked` adds the calibrated clock (benchmark.clock): it waits for a device busy with other
processes, measures the device before and after, gives the generator the protocol's budget scaled
by target / measured score, and runs a generation disturbed by contention again, once.
"""
from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from filelock import FileLock, Timeout

from evaluator.data import Dataset

from . import cgroups, clock, genkit, sandbox
from .console import info, warn
from .errors import SubmissionError, UsageError
from .results import Status
from .submission import Submission, unreadable_by_others

if TYPE_CHECKING:
    from .protocol import ClockRules, Target

POLL_SECONDS = 0.1
DEVICE_LOCKS = Path("/tmp/ddbench-devices")
TAIL_BYTES = 4096
TAIL_LINES = 12


@dataclass(frozen=True)
class Settings:
    """How to run a generator: where, with which seed, against which clock, in which sandbox."""
    device: str
    seed: int
    budget: float  # seconds
    limits: sandbox.Limits
    sandboxed: bool = True


@dataclass(frozen=True)
class Generation:
    shards: tuple[Path, ...]  # complete before the deadline, in index order
    seconds: float
    timed_out: bool
    returncode: int | None
    log_tail: str
    output_exceeded: bool = False
    memory_exceeded: bool = False
    late_shards: int = 0  # completed after the deadline: not counted
    odd_shards: tuple[str, ...] = ()  # hard links or sparse files: refused
    collected: object = None  # what `consume` made of the shards
    shard_error: str = ""  # why `consume` refused them
    budget: float = 0.0  # seconds the generator was given
    shard_seconds: tuple[float, ...] = ()  # when each shard was complete, from the start (as `shards`)
    foreign_share: float | None = None  # share of the CPUs other processes used meanwhile (None: unknown)
    reading: "clock.Reading | None" = None  # the calibrated clock's measurements (`clocked`)

    def shards_by(self, seconds: float) -> tuple[Path, ...]:
        """The shards complete by `seconds` after the start."""
        return tuple(path for path, t in zip(self.shards, self.shard_seconds) if t <= seconds)

    @property
    def crashed(self) -> bool:
        return not self.timed_out and self.returncode not in (0, None)

    def problem(self, limits: sandbox.Limits) -> tuple[Status, str] | None:
        """Why this generation cannot be scored (a status and a reason), or None."""
        if self.memory_exceeded:
            return Status.FAILED, (f"killed: the generator's processes used more than the memory cap of "
                                   f"{limits.max_memory_bytes >> 20} MiB (RAM, /tmp and /dev/shm together)")
        if self.output_exceeded:
            return Status.FAILED, f"output folder exceeded the cap of {limits.max_output_bytes >> 20} MiB; stopped"
        if self.crashed:
            return Status.FAILED, f"generator exited with status {self.returncode}: {self.log_tail or 'no output'}"
        if self.shard_error:
            return Status.INVALID, self.shard_error
        if self.odd_shards:
            return Status.INVALID, (f"{self.odd_shards[0]} is a hard link or a sparse file ({len(self.odd_shards)} such); "
                                    f"write every shard as a file of its own, e.g. with genkit.ShardWriter")
        if not self.shards:
            if self.timed_out:
                return Status.TIMEOUT, f"no shard completed within the {self.budget:g} s budget"
            return Status.FAILED, "the generator exited without completing a shard (shard-00000.safetensors, ... in --out)"
        return None


class _Tail:
    """Keeps the last TAIL_BYTES of a stream (a flood of output cannot fill memory or disk)."""

    def __init__(self, stream):
        self.buffer: collections.deque[bytes] = collections.deque()
        self.size = 0
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        for chunk in iter(lambda: stream.read1(65536), b""):
            self.buffer.append(chunk)
            self.size += len(chunk)
            while self.size - len(self.buffer[0]) > TAIL_BYTES:
                self.size -= len(self.buffer.popleft())

    def text(self) -> str:
        self.thread.join(timeout=5)
        lines = b"".join(self.buffer)[-TAIL_BYTES:].decode(errors="replace").strip().splitlines()
        return " | ".join(line.strip() for line in lines[-TAIL_LINES:] if line.strip())


def entrypoint_path(sub: Submission) -> Path:
    rel = Path(sub.entrypoint)
    if rel.is_absolute() or ".." in rel.parts or rel.suffix != ".py":
        raise SubmissionError(f"{sub.folder}/submission.yaml: key 'entrypoint' must be a .py file inside the folder, got '{sub.entrypoint}'")
    if not (sub.folder / rel).is_file():
        raise SubmissionError(f"{sub.folder / rel}: entrypoint missing; add it or set 'entrypoint' in submission.yaml")
    return rel


def _bench_dir(workdir: Path, classes: tuple[str, ...]) -> Path:
    """classes.json and the helper, exposed read-only (inside the sandbox at /bench)."""
    bench = workdir / "bench"
    (bench / "lib" / "benchmark").mkdir(parents=True)
    (bench / "classes.json").write_text(json.dumps(list(classes)))
    (bench / "lib" / "benchmark" / "__init__.py").write_text('"""The harness helper for generators."""\n')
    shutil.copyfile(genkit.__file__, bench / "lib" / "benchmark" / "genkit.py")
    for path in [bench, *bench.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return bench


def _output_bytes(folder: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def _complete_shards(out: Path, deadline: float, on_tmpfs: bool) -> tuple[tuple[tuple[Path, float], ...], int, tuple[str, ...]]:
    """Shards renamed into place before the deadline, with that time (their inode change time), how
    many came later, and the names of those that are not plain files of their own: a hard link, or on the
    harness's own tmpfs a sparse file (a few bytes of output claiming gigabytes; elsewhere a
    compressing file system also shows fewer blocks than bytes, so holes are not judged there).
    Only regular files named shard-NNNNN.safetensors at the top of --out count."""
    kept, late, odd = [], 0, []
    with os.scandir(out) as entries:
        for entry in entries:
            if not genkit.SHARD_PATTERN.fullmatch(entry.name) or not entry.is_file(follow_symlinks=False):
                continue
            st = entry.stat(follow_symlinks=False)
            if st.st_ctime > deadline:
                late += 1
            elif st.st_nlink != 1 or (on_tmpfs and st.st_blocks * 512 < st.st_size):
                odd.append(entry.name)
            else:
                kept.append((Path(entry.path), st.st_ctime))
    return tuple(sorted(kept)), late, tuple(sorted(odd))


Consume = Callable[[Generation], object]


def generate(sub: Submission, ds: Dataset, settings: Settings, consume: Consume | None = None) -> Generation:
    """Run the submission's entrypoint for one dataset. `consume` reads the shards that count
    (`Generation.shards`) where they are, before the output folder goes away; what it returns is
    `Generation.collected` (it is not called when the generation has a problem). The run's folders
    live in a fresh temp folder that the unprivileged sandbox can reach."""
    entry = entrypoint_path(sub)
    if settings.sandboxed and os.geteuid() == 0:  # the sandbox user must be able to read the folder
        hidden = unreadable_by_others(sub.folder)
        if hidden:
            raise SubmissionError(f"{sub.folder}: {len(hidden)} entries the sandbox user cannot read (e.g. {hidden[0]}); "
                                  f"make the folder readable by all: chmod -R a+rX {sub.folder.name}")
    if settings.sandboxed:
        sandbox.bwrap_binary()
        for problem in sandbox.cleanup_stale():
            warn(problem)
    with sandbox.temp_folder() as tmp:
        return _generate_in(Path(tmp), sub, ds, settings, entry, consume)


def clocked(sub: Submission, ds: Dataset, settings: Settings, rules: ClockRules, target: Target | None,
            wait: float | None, consume: Consume | None = None) -> Generation:
    """A generation against the calibrated clock (rules: the protocol's ClockRules; target: the
    dataset's target device or None; wait: seconds to wait for a busy device, None: refuse). The
    device is measured before (the budget is settings.budget x target / measured score, within
    the protocol's limits) and after; a generation during which the score moved, or the share of
    the CPUs other processes used changed, runs again, once; the kept one carries its `clock.Reading`."""
    workload = clock.default_workload(settings.device)
    scaling = target if target is not None and target.workload == workload else None  # a CPU target, a GPU here: no
    name = f"{sub.team}/{ds.info.name}"
    for attempt in (1, 2):
        wait_for_device(settings.device, rules.busy_share, wait, name)
        meter, children = clock.CpuMeter(), _children_cpu_seconds()
        before = clock.measure_fresh(settings.device, ds.info.resolution, workload, rules.samples)
        calm = meter.share(_children_cpu_seconds() - children)  # others' share while we measured
        budget = clock.effective_budget(settings.budget, scaling.score if scaling else None, before.value,
                                        rules.scale_limits)
        if scaling is not None:
            info(f"{name}: device score {before.value:.1f} (target {scaling.score:g}): "
                 f"{budget.seconds:.1f} s for the protocol's {settings.budget:g} s")
        elif target is not None:
            budget = replace(budget, clock="mismatch")
            warn(f"{name}: the budget is meant for a {target.workload.upper()} ({target.device}), this is "
                 f"{settings.device}: unscaled wall time, and the row is not ranked")
        gen = generate(sub, ds, replace(settings, budget=budget.seconds), consume)
        after = clock.measure_fresh(settings.device, ds.info.resolution, workload, rules.samples)
        foreign = gen.foreign_share if not settings.device.startswith("cuda") else None
        why = clock.contention(before, after, foreign, calm, rules.tolerance, rules.max_foreign_share)
        gen = replace(gen, reading=clock.Reading(before, after, budget, foreign, calm, attempt, why))
        if not why:
            break
        warn(f"{name}: unstable clock ({why}); " + ("generating again, once" if attempt == 1 else
                                                      "again: the row is marked unstable and not ranked"))
    return gen


@contextmanager
def device_lock(device: str, name: str) -> Iterator[None]:
    """Held while a generator (and its calibration) runs: one generator per device on this machine,
    whichever harness launch or process started it (a lock file in the machine's temp folder)."""
    folder = DEVICE_LOCKS  # fixed: a per-job TMPDIR (Slurm, CI) must not give each job its own
    try:
        folder.mkdir(exist_ok=True)
        folder.chmod(0o1777)  # every user's harness shares the machine's devices (like /tmp itself)
    except PermissionError:  # made by another user: theirs to set
        pass
    lock = FileLock(str(folder / f"{_device_id(device)}.lock"), mode=0o666)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        info(f"{name}: waiting for {device}: another generator on this machine is using it")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _device_id(device: str) -> str:
    """The physical device: the GPU's UUID (CUDA_VISIBLE_DEVICES renumbers them per process), or 'cpu'."""
    if not device.startswith("cuda"):
        return "cpu"
    return clock.gpu_selector(device).replace("/", "_")


def wait_for_device(device: str, share: float, wait: float | None, name: str) -> None:
    """Return once no other process uses the device (CPUs: more than `share` of them), or after
    `wait` seconds with a warning; with wait None, refuse at once; with wait 0, go on unchecked
    (the contention rule still judges the generation)."""
    if wait == 0:
        return
    why = clock.busy(device, share)
    if why is None:
        return
    if wait is None:
        raise UsageError(f"{name}: the device is busy: {why}; generate when it is free, or drop --no-wait to wait")
    info(f"{name}: waiting for the device (up to {wait:g} s): {why}")
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        time.sleep(min(4.0, max(0.0, deadline - time.monotonic())))
        why = clock.busy(device, share)
        if why is None:
            return
    warn(f"{name}: still busy after {wait:g} s ({why}); generating all the same: the budget follows the device's "
         f"measured score, and a load that comes or goes during the generation makes it run again")


def _generate_in(folder: Path, sub: Submission, ds: Dataset, settings: Settings, entry: Path,
                 consume: Consume | None) -> Generation:
    root = os.geteuid() == 0
    folder.chmod(0o711)  # the unprivileged sandbox must reach the folders inside
    bench = _bench_dir(folder, ds.classes)
    space = folder / "space"
    space.mkdir(mode=0o755)
    mounted = settings.sandboxed and sandbox.mount_output(space, settings.limits)
    try:
        out = space / "out"
        out.mkdir(mode=0o755)
        if settings.sandboxed and root:
            os.chown(out, sandbox.SANDBOX_UID, sandbox.SANDBOX_UID)
        staging = folder / "stage" if settings.sandboxed and root else None
        gen = _watch(_Run(sub, ds, settings, entry, sandbox.plan_mounts(sub.folder, out, bench, staging), mounted))
        if consume is not None and gen.problem(settings.limits) is None:
            try:
                gen = replace(gen, collected=consume(gen))  # read in place: nothing is copied
            except SubmissionError as exc:  # a shard breaks the rules
                gen = replace(gen, shard_error=str(exc))
        return gen
    finally:
        if mounted:
            problem = sandbox.unmount_output(space)
            if problem:
                warn(problem)


@dataclass(frozen=True)
class _Run:
    """One generator process: its submission, dataset, settings and folders."""
    sub: Submission
    ds: Dataset
    settings: Settings
    entry: Path  # relative to the submission folder
    mounts: sandbox.Mounts
    output_on_tmpfs: bool

    @property
    def out(self) -> Path:
        return self.mounts.out

    def argv(self) -> list[str]:
        sandboxed = self.settings.sandboxed
        folder, out_dir, lib = ("/submission", "/out", "/bench") if sandboxed else \
            (str(self.sub.folder), str(self.out), str(self.mounts.bench))
        info = self.ds.info
        return [sys.executable, f"{folder}/{self.entry.as_posix()}", "--dataset", info.name,
                "--num-classes", str(info.num_classes), "--resolution", str(info.resolution),
                "--classes", f"{lib}/classes.json", "--out", out_dir, "--device", self.settings.device,
                "--seed", str(self.settings.seed), *self.sub.args]

    def env(self, start: float) -> dict[str, str]:
        lib = "/bench" if self.settings.sandboxed else str(self.mounts.bench)
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp",
               "LANG": "C.UTF-8", "PYTHONPATH": f"{lib}/lib", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
               "PYTHONNOUSERSITE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "BENCH_BUDGET_SECONDS": f"{self.settings.budget:g}", "BENCH_DEADLINE": f"{start + self.settings.budget:.3f}"}
        for name in ("CUDA_VISIBLE_DEVICES", "GOMP_SPINCOUNT", "OMP_WAIT_POLICY"):  # as the calibration ran
            if name in os.environ:
                env[name] = os.environ[name]
        if not self.settings.sandboxed:
            env["TMPDIR"] = env["HOME"] = str(self.out.parent)
        return env

    def output_bytes(self) -> int:
        return sandbox.used_bytes(self.out.parent) if self.output_on_tmpfs else _output_bytes(self.out)


class _OutputWatch:
    """A thread that kills the generator once its output passes the cap (the walk it may need
    runs here, never on the clock's thread)."""

    def __init__(self, run: _Run, kill):
        self.run, self.kill, self.exceeded = run, kill, False
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.wait(POLL_SECONDS):
            if self.run.output_bytes() > self.run.settings.limits.max_output_bytes:
                self.exceeded = True
                self.kill()
                return

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def _launch(run: _Run, groups: cgroups.Cgroups | None, env: dict[str, str]) -> subprocess.Popen:
    settings, limits = run.settings, run.settings.limits
    if not settings.sandboxed:
        return subprocess.Popen(run.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=env, cwd=run.sub.folder, start_new_session=True)
    root = os.geteuid() == 0
    launch = sandbox.Launch(limits=limits, join=tuple(groups.join_files()),
                            memory_rlimit=not groups.caps_memory and not settings.device.startswith("cuda"),
                            nproc_rlimit=not groups.caps_processes, stage=tuple(run.mounts.stage),
                            drop_to=sandbox.SANDBOX_UID if root else None)
    if not groups.caps_memory and settings.device.startswith("cuda"):
        warn("no memory cgroup can be made here (run the harness as root): the generator's memory is not capped")
    cmd = sandbox.bwrap_command(run.argv(), run.mounts, env, settings.device, limits)
    try:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env={}, start_new_session=True, preexec_fn=launch.preexec())
    except subprocess.SubprocessError as exc:  # the preexec step failed: a set-up problem, not the team's
        raise UsageError(f"cannot start the generator sandbox ({exc}); run the harness as root, or check bubblewrap") from None


def _watch(run: _Run) -> Generation:
    """Spawn against the clock; wait until exit or deadline; kill the tree; read what counts."""
    groups = cgroups.Cgroups(run.settings.limits) if run.settings.sandboxed else None
    meter = clock.CpuMeter()
    start = time.time()
    deadline = start + run.settings.budget
    try:
        proc = _launch(run, groups, run.env(start))

        def kill() -> None:
            _kill(proc, groups)

        tail, watch = _Tail(proc.stdout), _OutputWatch(run, kill)
        timed_out = False
        try:
            proc.wait(timeout=max(0.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            timed_out = True
        except BaseException:  # interrupted: never leave a generator running
            kill()
            raise
        finally:
            ended = min(time.time(), deadline)
            kill()  # the whole tree, also what a finished generator left running
            watch.close()
        used = groups.cpu_seconds() if groups is not None else None
        # Without a cgroup nothing counts the sandboxed tree's CPU (bwrap's init is never reaped by
        # us): others' share is unknown, and only the scores before and after judge the clock.
        foreign = meter.share(used) if used is not None else None
        done, late, odd = _complete_shards(run.out, ended, run.output_on_tmpfs)
        return Generation(shards=tuple(p for p, _ in done), seconds=ended - start,
                          timed_out=timed_out and not watch.exceeded, returncode=proc.returncode,
                          log_tail=tail.text(), output_exceeded=watch.exceeded,
                          memory_exceeded=bool(groups and groups.oom_kills()), late_shards=late, odd_shards=odd,
                          budget=run.settings.budget, shard_seconds=tuple(max(0.0, t - start) for _, t in done),
                          foreign_share=foreign)
    finally:
        if groups is not None:
            groups.close()


def _children_cpu_seconds() -> float:
    """CPU time of this process's waited-for children (the calibration's interpreters)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _kill(proc: subprocess.Popen, groups: cgroups.Cgroups | None) -> None:
    """The whole tree: bwrap's process group, the PID namespace with it, and the cgroups."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if groups is not None:
        groups.kill()
    proc.wait()
