"""The generative track: run a generator against the clock, then turn its shards into an IPC.

The clock starts when the process is spawned and covers interpreter start, imports, model
loading, generation and saving. At the deadline the complete shards are frozen first (hard links
the generator cannot reach), then the whole process tree is killed; shards completed later do
not count. IPC = the smallest per-class count (extras dropped, first written kept, capped at the
protocol's max_ipc); epochs come from the IPC-epoch table.
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
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from evaluator.data import Dataset
from evaluator.errors import ImageFileError
from evaluator.files import check_image_set, read_tensor_file

from . import genkit, sandbox
from .errors import SubmissionError
from .results import Status
from .submission import Submission

POLL_SECONDS = 0.1
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
    shards: tuple[Path, ...]  # complete shards, frozen, in index order
    seconds: float
    timed_out: bool
    returncode: int | None
    log_tail: str
    output_exceeded: bool = False

    @property
    def crashed(self) -> bool:
        return not self.timed_out and self.returncode not in (0, None)

    def problem(self, budget: float, limits: sandbox.Limits) -> tuple[Status, str] | None:
        """Why this generation cannot be scored (a status and a reason), or None."""
        if self.output_exceeded:
            return Status.FAILED, f"output folder exceeded the cap of {limits.max_output_bytes >> 20} MiB; stopped"
        if self.crashed:
            return Status.FAILED, f"generator exited with status {self.returncode}: {self.log_tail or 'no output'}"
        if not self.shards:
            if self.timed_out:
                return Status.TIMEOUT, f"no shard completed within the {budget:g} s budget"
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


def _freeze(out: Path, frozen: Path) -> tuple[Path, ...]:
    """Hard-link the complete shards (named shard-NNNNN.safetensors) where the generator cannot reach."""
    kept = []
    for path in sorted(out.iterdir()):
        if genkit.SHARD_PATTERN.match(path.name) and path.is_file() and not path.is_symlink():
            target = frozen / path.name
            os.link(path, target)
            kept.append(target)
    return tuple(kept)


def generate(sub: Submission, ds: Dataset, settings: Settings, workdir: Path) -> Generation:
    """Run the submission's entrypoint for one dataset; workdir must be an empty folder."""
    entry = entrypoint_path(sub)
    if settings.sandboxed:
        sandbox.bwrap_binary()
    bench = _bench_dir(workdir, ds.classes)
    space = workdir / "space"
    space.mkdir()
    mounted = settings.sandboxed and sandbox.mount_output(space, settings.limits)
    try:
        run = _Run(sub, ds, settings, entry, bench, out=space / "out", frozen=space / "frozen")
        run.out.mkdir()
        run.frozen.mkdir(mode=0o700)
        gen = _watch(run)
        kept = workdir / "shards"  # off the output tmpfs, which goes away below
        kept.mkdir()
        return replace(gen, shards=tuple(Path(shutil.move(str(p), kept / p.name)) for p in gen.shards))
    finally:
        if mounted:
            sandbox.unmount_output(space)


@dataclass(frozen=True)
class _Run:
    """One generator process: its submission, dataset, settings and folders."""
    sub: Submission
    ds: Dataset
    settings: Settings
    entry: Path  # relative to the submission folder
    bench: Path  # classes.json and the genkit helper
    out: Path
    frozen: Path

    def argv(self) -> list[str]:
        sandboxed = self.settings.sandboxed
        folder, out_dir, lib = ("/submission", "/out", "/bench") if sandboxed else (str(self.sub.folder), str(self.out), str(self.bench))
        info = self.ds.info
        return [sys.executable, f"{folder}/{self.entry.as_posix()}", "--dataset", info.name,
                "--num-classes", str(info.num_classes), "--resolution", str(info.resolution),
                "--classes", f"{lib}/classes.json", "--out", out_dir, "--device", self.settings.device,
                "--seed", str(self.settings.seed), *self.sub.args]

    def env(self, start: float) -> dict[str, str]:
        lib = "/bench" if self.settings.sandboxed else str(self.bench)
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp",
               "LANG": "C.UTF-8", "PYTHONPATH": f"{lib}/lib", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
               "PYTHONNOUSERSITE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "BENCH_BUDGET_SECONDS": f"{self.settings.budget:g}", "BENCH_DEADLINE": f"{start + self.settings.budget:.3f}"}
        if "CUDA_VISIBLE_DEVICES" in os.environ:
            env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
        if not self.settings.sandboxed:
            env["TMPDIR"] = env["HOME"] = str(self.out.parent)
        return env


def _watch(run: _Run) -> Generation:
    """Spawn against the clock, poll until exit, deadline or output cap; freeze, then kill."""
    settings, limits = run.settings, run.settings.limits
    start = time.time()
    env = run.env(start)
    if settings.sandboxed:
        cmd = sandbox.bwrap_command(run.argv(), run.sub.folder, run.out, run.bench, env, settings.device)
    else:
        cmd = run.argv()
    cap = sandbox.ProcessCap(limits.max_processes) if settings.sandboxed else None
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env={} if settings.sandboxed else env, cwd=None if settings.sandboxed else run.sub.folder,
                                start_new_session=True, preexec_fn=sandbox.preexec(limits, cap.join_file() if cap else None))
        tail = _Tail(proc.stdout)
        deadline = start + settings.budget
        timed_out = exceeded = False
        try:
            while proc.poll() is None:
                now = time.time()
                if now >= deadline:
                    timed_out = True
                    break
                if _output_bytes(run.out) > limits.max_output_bytes:
                    exceeded = True
                    break
                time.sleep(min(POLL_SECONDS, max(0.0, deadline - now)))
        except BaseException:  # interrupted: never leave a generator running
            _kill(proc)
            raise
        ended = min(time.time(), deadline)
        shards = _freeze(run.out, run.frozen)  # before the kill: later shards do not count
        _kill(proc)
        return Generation(shards=shards, seconds=ended - start, timed_out=timed_out, returncode=proc.returncode,
                          log_tail=tail.text(), output_exceeded=exceeded)
    finally:
        if cap is not None:
            cap.close()


def _kill(proc: subprocess.Popen) -> None:
    """The whole tree: the process group (and, sandboxed, the PID namespace with bwrap)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


@dataclass(frozen=True)
class GeneratedSet:
    images: torch.Tensor  # uint8, IPC images per class, write order kept
    labels: torch.Tensor
    ipc: int
    generated: int
    dropped: int


def collect(shards: tuple[Path, ...], ds: Dataset, max_ipc: int) -> GeneratedSet:
    """Load and validate the shards; IPC = smallest class count (capped), extras dropped."""
    images, labels = [], []
    for path in shards:
        try:
            data = read_tensor_file(path)
        except ImageFileError as exc:
            raise SubmissionError(f"{path.name}: {exc}") from None
        if not isinstance(data, dict) or "images" not in data or "labels" not in data:
            raise SubmissionError(f"{path.name}: a shard needs 'images' and 'labels' tensors")
        if data["images"].dtype != torch.uint8:
            raise SubmissionError(f"{path.name}: images have dtype {data['images'].dtype}; shards hold uint8 RGB images")
        try:
            s = check_image_set(Path(path.name), data["images"], data["labels"], ds.info.num_classes,
                                ds.info.resolution, require_all_classes=False)
        except ImageFileError as exc:
            raise SubmissionError(str(exc)) from None
        images.append(s.images)
        labels.append(s.labels)
    all_images, all_labels = torch.cat(images), torch.cat(labels)
    counts = torch.bincount(all_labels, minlength=ds.info.num_classes)
    smallest = int(counts.argmin())
    if counts[smallest] == 0:
        raise SubmissionError(f"the generator produced no image of class {smallest} ('{ds.classes[smallest]}'); "
                              f"IPC would be 0: every class needs images")
    ipc = min(int(counts.min()), max_ipc)
    keep = torch.cat([torch.nonzero(all_labels == c).flatten()[:ipc] for c in range(ds.info.num_classes)]).sort().values
    return GeneratedSet(all_images[keep], all_labels[keep], ipc, len(all_labels), len(all_labels) - len(keep))
