"""The versioned evaluation protocol: benchmark/protocols/v<N>.yaml as one frozen object.

Every value that affects a score lives in the protocol file and nowhere else; the core's
dataclasses (`Recipe`, `DsaParams`, `IpcEpochTable`, sandbox `Limits`) are built from it here.
Released versions are frozen: CHANGELOG.yaml records the digest of each released file, and a
file whose content no longer matches is refused. The current version is the newest released one.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from evaluator.errors import ArchitectureError
from evaluator.ipc_epochs import IpcEpochTable
from evaluator.recipe import PRECISIONS, DsaParams, LeakParams, Recipe, SoftLabelParams, check_name
from evaluator.registry import REGISTRY

from .clock import SHAPES, WORKLOAD_VERSION
from .errors import UsageError
from .sandbox import Limits
from .text import plain
from .yamlsafe import YamlError, load_yaml_text

FOLDER = Path(__file__).parent / "protocols"
CHANGELOG = FOLDER / "CHANGELOG.yaml"


def check_override_values(o) -> str | None:
    """What is wrong with an override's (or a preset's) runs, epochs, budget or precision."""
    if o.runs is not None and o.runs < 1:
        return f"runs {o.runs}: needs at least 1 run"
    if o.epochs is not None and o.epochs < 0:
        return f"epochs {o.epochs}: must be 0 or more"
    if o.budget is not None and o.budget <= 0:
        return f"budget {o.budget}: must be a positive number of seconds"
    if o.precision is not None and o.precision not in PRECISIONS:
        return f"precision {o.precision}: use one of {', '.join(PRECISIONS)}"
    return None


@dataclass(frozen=True)
class Preset:
    """A named set of overrides (e.g. `quick`); a row made with one is non-standard."""
    runs: int | None = None
    seed: int | None = None
    precision: str | None = None
    epochs: int | None = None
    budget: float | None = None


Stats = tuple[tuple[float, float, float], tuple[float, float, float]]  # mean, std per channel


@dataclass(frozen=True)
class Target:
    """The device a dataset's generation budget is meant for, and its calibration score."""
    workload: str  # the calibration workload (benchmark.clock.SHAPES) the score was measured with
    score: float
    device: str  # in words, e.g. "2-core x86-64 CPU"


@dataclass(frozen=True)
class ClockRules:
    """The calibrated generation clock and the anytime curve (from version 5; docs/PROTOCOL.md)."""
    workload_version: int  # of benchmark.clock's workload; target scores were measured with it
    samples: int  # timed samples per measurement
    tolerance: float  # the score may move by this fraction during a generation ...
    max_foreign_share: float  # ... and other processes may use this share of the CPUs, else: again once
    busy_share: float  # a CPU this busy with other processes when a generation would start is waited for
    scale_limits: tuple[float, float]  # the budget's scale factor is kept within these
    targets: Mapping[str, Target]  # dataset -> target device; none: the budget is unscaled
    fractions: tuple[float, ...]  # the anytime curve's points, as fractions of the budget
    anytime_datasets: tuple[str, ...]  # where the curve is made by default


@dataclass(frozen=True)
class Protocol:
    version: int
    digest: str  # sha256 of the content (canonical JSON of the parsed YAML)
    released: bool  # False for a protocol file of one's own (--protocol FILE): never ranked
    seeds: tuple[int, ...]
    precision: str
    recipe: Recipe
    fixed_ipc: int
    fixed_epochs: int
    ipc_epochs: IpcEpochTable
    max_ipc: int
    budgets: Mapping[str, float]
    sandbox_limits: Limits
    presets: Mapping[str, Preset]
    challenge_arch: str
    cross_archs: tuple[str, ...]
    normalization: Mapping[str, Stats]  # dataset -> (mean, std) (from version 4; empty before)
    leakage: LeakParams | None = None  # the leakage check (from version 3; None: not checked)
    max_float_excursion: float = float("inf")  # float images may leave [0, 1] pixels by this much (version 3)
    clock: ClockRules | None = None  # the calibrated clock (version 5; None: plain wall time, no curve)
    data_digests: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # dataset -> sha256 of its splits (version 6)
    soft_labels: SoftLabelParams | None = None  # the soft-label division (version 7; None: no division)

    def target(self, dataset: str) -> Target | None:
        """The device the dataset's budget is meant for (None: the budget is unscaled wall time)."""
        return self.clock.targets.get(dataset) if self.clock else None

    def stats(self, dataset: str) -> Stats:
        """The (mean, std) per channel that normalise the dataset's images into the network's input.
        Versions 2 and 3 did not name them: they used the registry's values, which version 4 took."""
        if dataset in self.normalization:
            return self.normalization[dataset]
        if self.version < 4 and self.released and dataset in REGISTRY:
            return REGISTRY[dataset].mean, REGISTRY[dataset].std
        raise UsageError(f"protocol {self.label}: no normalization for '{dataset}'; add its mean and std under "
                         f"normalization in a new protocol version")

    def expand_archs(self, names: list[str] | None) -> tuple[str, ...]:
        """--arch values: 'cross' is the protocol's unseen set; none given: the challenge's network.
        Every network trains with the protocol's one recipe (`training`)."""
        out: list[str] = []
        for name in names or [self.challenge_arch]:
            for arch in (self.cross_archs if name == "cross" else [check_name(name)]):
                if arch not in out:
                    out.append(arch)
        return tuple(out)

    @property
    def runs(self) -> int:
        return len(self.seeds)

    @property
    def label(self) -> str:
        """'2' for a released version; 'custom-<digest>' for a file of one's own."""
        return str(self.version) if self.released else f"custom-{self.digest[:8]}"

    def budget(self, dataset: str) -> float:
        if dataset not in self.budgets:
            raise UsageError(f"protocol {self.label}: no generation budget for '{dataset}'; "
                             f"add it under generative.budget_seconds in a new protocol version")
        return float(self.budgets[dataset])

    def preset(self, name: str) -> Preset:
        if name not in self.presets:
            raise UsageError(f"--preset {name}: unknown preset; known: {', '.join(self.presets) or 'none'}")
        return self.presets[name]


def content_digest(tree: object) -> str:
    """What a released version freezes: the values, not the comments or the layout."""
    return hashlib.sha256(json.dumps(tree, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _digest(tree: object, path: Path) -> str:
    try:
        return content_digest(tree)
    except (TypeError, ValueError):  # a date, bytes, a number as a key, an integer too long to print
        raise UsageError(f"{path}: a protocol holds only numbers, text, true/false, lists and mappings with text "
                         f"keys; found something else (a date, binary data, a numeric key or a huge number)") from None


# The sane range of every number in a protocol file (inclusive): a file of one's own is checked as
# strictly as a release, so that NaN, infinities, zero caps and absurd sizes never reach the work.
_AUG = "training.augmentation."
LIMITS: dict[str, tuple[float, float]] = {
    "version": (1, 10_000), "training.lr": (1e-8, 10), "training.momentum": (0, 0.999),
    "training.weight_decay": (0, 1), "training.batch_size": (1, 1 << 16), "training.decay_factor": (1e-6, 1),
    _AUG + "brightness": (0, 10), _AUG + "saturation": (0, 10), _AUG + "contrast": (0, 10), _AUG + "crop": (0, 0.5),
    _AUG + "cutout": (0, 1), _AUG + "flip": (0, 1), _AUG + "scale": (1, 4), _AUG + "rotate": (0, 180),
    "fixed_ipc.ipc": (1, 10_000), "fixed_ipc.epochs": (1, 100_000), "generative.ipc_epochs.cap": (1, 100_000),
    "generative.max_ipc": (1, 100_000), "sandbox.max_memory_mib": (64, 1 << 22), "sandbox.max_tmp_mib": (1, 1 << 22),
    "sandbox.max_processes": (8, 1 << 16), "sandbox.max_open_files": (16, 1 << 20),
    "sandbox.max_output_mib": (1, 1 << 22),
    "integrity.leakage.max_shift": (0, 16), "integrity.leakage.coarse_size": (1, 64),
    "integrity.leakage.candidates": (1, 256), "integrity.leakage.max_distance": (1e-6, 1),
    "integrity.leakage.ratio": (1e-6, 1), "integrity.leakage.blend_ratio": (1e-6, 1),
    "integrity.leakage.max_fraction": (0, 0.999), "integrity.max_float_excursion": (0, 10),
    "generative.clock.workload": (1, 1000), "generative.clock.samples": (3, 100),
    "generative.clock.tolerance": (0.01, 1), "generative.clock.max_foreign_share": (0.01, 1),
    "generative.clock.busy_share": (0.01, 1),
    "soft_labels.temperature": (0.01, 100), "soft_labels.sum_tolerance": (1e-9, 0.1),
    "soft_labels.teacher.seed": (0, 2**31 - 1), "soft_labels.top_k.min": (1, 100_000),
}
SCALE_RANGE = (0.01, 100)  # generative.clock.scale_limits
SEED_RANGE, MAX_SEEDS = (0, 2**31 - 1), 100
BUDGET_RANGE = (1e-3, 7 * 86_400)  # seconds
EPOCH_RANGE = (1, 100_000)  # every epoch count: table rows, preset overrides
MAX_PROTOCOL_BYTES = 64 << 10


def _in_range(value: float, limits: tuple[float, float]) -> bool:
    return math.isfinite(value) and limits[0] <= value <= limits[1]


class _Reader:
    """Typed access to the parsed YAML; errors name the file and the dotted key."""

    def __init__(self, tree: object, where: str):
        self.tree, self.where = tree, where

    def get(self, dotted: str, kind: type | tuple[type, ...]):
        node = self.tree
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                raise UsageError(f"{self.where}: missing key '{dotted}'; every protocol value must be given")
            node = node[part]
        if not isinstance(node, kind) or isinstance(node, bool) and kind is not bool:
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise UsageError(f"{self.where}: key '{dotted}' must be {names}, got {type(node).__name__}")
        if dotted in LIMITS and not _in_range(node, LIMITS[dotted]):
            lo, hi = LIMITS[dotted]
            raise UsageError(f"{self.where}: key '{dotted}' is {node}; it must be a finite number from {lo:g} to {hi:g}")
        return node

    def number(self, dotted: str) -> float:
        return float(self.get(dotted, (int, float)))


def _recipe(r: _Reader) -> Recipe:
    aug = r.get("training.augmentation", (dict, type(None)))
    dsa = None
    if aug is not None:
        magnitudes = {f.name: r.number(f"training.augmentation.{f.name}") for f in fields(DsaParams) if f.name != "ops"}
        dsa = DsaParams(ops=tuple(r.get("training.augmentation.ops", list)), **magnitudes)
    return Recipe(optimizer=r.get("training.optimizer", str), lr=r.number("training.lr"),
                  momentum=r.number("training.momentum"), weight_decay=r.number("training.weight_decay"),
                  batch_size=r.get("training.batch_size", int), schedule=r.get("training.schedule", str),
                  decay_factor=r.number("training.decay_factor"), augmentation=dsa)


def _presets(r: _Reader) -> dict[str, Preset]:
    allowed = {f.name for f in fields(Preset)}
    out = {}
    for name, values in (r.get("presets", dict) or {}).items():
        if not isinstance(values, dict) or set(values) - allowed:
            raise UsageError(f"{r.where}: preset '{name}' may only set {', '.join(sorted(allowed))}")
        try:
            out[str(name)] = preset = Preset(**values)
        except TypeError:
            raise UsageError(f"{r.where}: preset '{plain(name, 40)}' may only set {', '.join(sorted(allowed))}") from None
        problem = check_override_values(preset) or _preset_bounds(preset)
        if problem:
            raise UsageError(f"{r.where}: preset '{plain(name, 40)}': {problem}")
    return out


def _preset_bounds(p: Preset) -> str | None:
    for name, value, kind, limits in (("runs", p.runs, int, (1, MAX_SEEDS)), ("seed", p.seed, int, SEED_RANGE),
                                      ("epochs", p.epochs, int, (0, EPOCH_RANGE[1])),
                                      ("budget", p.budget, (int, float), BUDGET_RANGE)):
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool) or not _in_range(value, limits)):
            return f"{name} {value!r}: must be a number from {limits[0]:g} to {limits[1]:g}"
    return None


def parse_protocol(tree: object, where: str, released: bool) -> Protocol:
    r = _Reader(tree, where)
    seeds = r.get("evaluation.seeds", list)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds) \
            or seeds != list(range(seeds[0], seeds[0] + len(seeds))):
        raise UsageError(f"{where}: key 'evaluation.seeds' must be a non-empty list of consecutive integers")
    if len(seeds) > MAX_SEEDS or not all(_in_range(s, SEED_RANGE) for s in (seeds[0], seeds[-1])):
        raise UsageError(f"{where}: key 'evaluation.seeds': at most {MAX_SEEDS} seeds, each from 0 to {SEED_RANGE[1]}")
    precision = r.get("evaluation.precision", str)
    if precision not in PRECISIONS:
        raise UsageError(f"{where}: key 'evaluation.precision' must be one of {', '.join(PRECISIONS)}")
    budgets = r.get("generative.budget_seconds", dict)
    try:
        recipe = _recipe(r)
        table = IpcEpochTable(rows=tuple((int(a), int(b)) for a, b in r.get("generative.ipc_epochs.rows", list)),
                              cap=r.get("generative.ipc_epochs.cap", int))
        budgets = {str(k): float(v) for k, v in budgets.items()}
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{where}: {exc}") from None
    for dataset, seconds in budgets.items():
        if not _in_range(seconds, BUDGET_RANGE):
            raise UsageError(f"{where}: key 'generative.budget_seconds.{plain(dataset, 40)}' is {seconds}; it must be "
                             f"a finite number of seconds from {BUDGET_RANGE[0]:g} to {BUDGET_RANGE[1]:g}")
    if not all(_in_range(ipc, (1, 100_000)) and _in_range(e, EPOCH_RANGE) for ipc, e in table.rows):
        raise UsageError(f"{where}: key 'generative.ipc_epochs.rows': every IPC from 1 to 100000 and every epoch "
                         f"count from {EPOCH_RANGE[0]} to {EPOCH_RANGE[1]}")
    return Protocol(
        version=r.get("version", int), digest=_digest(tree, Path(where)), released=released,
        seeds=tuple(seeds), precision=precision, recipe=recipe,
        fixed_ipc=r.get("fixed_ipc.ipc", int), fixed_epochs=r.get("fixed_ipc.epochs", int),
        ipc_epochs=table, max_ipc=r.get("generative.max_ipc", int), budgets=MappingProxyType(budgets),
        sandbox_limits=Limits(max_processes=r.get("sandbox.max_processes", int),
                              max_open_files=r.get("sandbox.max_open_files", int),
                              max_output_bytes=r.get("sandbox.max_output_mib", int) << 20,
                              max_memory_bytes=r.get("sandbox.max_memory_mib", int) << 20,
                              max_tmp_bytes=r.get("sandbox.max_tmp_mib", int) << 20),
        presets=MappingProxyType(_presets(r)),
        leakage=_leakage(r),
        max_float_excursion=r.number("integrity.max_float_excursion") if _has(r, "integrity") else float("inf"),
        normalization=MappingProxyType(_normalization(r)),
        clock=_clock(r),
        data_digests=MappingProxyType(_data_digests(r)),
        soft_labels=_soft_labels(r),
        **_architectures(r),
    )


def _has(r: _Reader, key: str) -> bool:
    return isinstance(r.tree, dict) and key in r.tree


def _leakage(r: _Reader) -> LeakParams | None:
    if not _has(r, "integrity"):
        return None  # version 2 had no leakage check
    key = "integrity.leakage"
    try:
        return LeakParams(max_shift=r.get(f"{key}.max_shift", int), coarse_size=r.get(f"{key}.coarse_size", int),
                          candidates=r.get(f"{key}.candidates", int), max_distance=r.number(f"{key}.max_distance"),
                          ratio=r.number(f"{key}.ratio"), blend_ratio=r.number(f"{key}.blend_ratio"),
                          max_fraction=r.number(f"{key}.max_fraction"))
    except ValueError as exc:
        raise UsageError(f"{r.where}: {key}: {exc}") from None


def _clock(r: _Reader) -> ClockRules | None:
    """generative.clock and generative.anytime (required from version 5)."""
    if not isinstance(r.get("generative", dict), dict) or "clock" not in r.get("generative", dict):
        if r.get("version", int) >= 5:
            raise UsageError(f"{r.where}: missing key 'generative.clock'; every protocol value must be given")
        return None
    key = "generative.clock"
    version = r.get(f"{key}.workload", int)
    if version != WORKLOAD_VERSION:
        raise UsageError(f"{r.where}: key '{key}.workload' is {version}; this harness measures with calibration "
                         f"workload {WORKLOAD_VERSION}: measure the targets again with it in a new protocol version")
    limits = r.get(f"{key}.scale_limits", list)
    if len(limits) != 2 or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and _in_range(x, SCALE_RANGE)
                                   for x in limits) or not limits[0] <= 1 <= limits[1]:
        raise UsageError(f"{r.where}: key '{key}.scale_limits' must be [low, high] with "
                         f"{SCALE_RANGE[0]:g} <= low <= 1 <= high <= {SCALE_RANGE[1]:g}")
    targets = {}
    for dataset, entry in (r.get(f"{key}.targets", (dict, type(None))) or {}).items():
        where = f"{key}.targets.{plain(dataset, 40)}"
        if dataset not in REGISTRY:
            raise UsageError(f"{r.where}: key '{where}': unknown dataset; known: {', '.join(REGISTRY)}")
        workload, device = r.get(f"{key}.targets.{dataset}.workload", str), r.get(f"{key}.targets.{dataset}.device", str)
        score = r.number(f"{key}.targets.{dataset}.score")
        if workload not in SHAPES or not _in_range(score, (1e-6, 1e9)) or len(device) > 200:
            raise UsageError(f"{r.where}: key '{where}': workload one of {', '.join(SHAPES)}, a positive score, "
                             f"the device in at most 200 characters")
        targets[str(dataset)] = Target(workload, score, device)
    fractions = r.get("generative.anytime.fractions", list)
    if not fractions or len(fractions) > 20 or not all(
            isinstance(f, (int, float)) and not isinstance(f, bool) and 0 < f < 1 for f in fractions) \
            or sorted(set(fractions)) != fractions:
        raise UsageError(f"{r.where}: key 'generative.anytime.fractions' must be 1 to 20 increasing fractions "
                         f"between 0 and 1 (the full budget is the main row)")
    datasets = r.get("generative.anytime.datasets", list)
    if not all(isinstance(d, str) and d in REGISTRY for d in datasets):
        raise UsageError(f"{r.where}: key 'generative.anytime.datasets' must list known datasets: {', '.join(REGISTRY)}")
    return ClockRules(workload_version=version, samples=r.get(f"{key}.samples", int),
                      tolerance=r.number(f"{key}.tolerance"), max_foreign_share=r.number(f"{key}.max_foreign_share"),
                      busy_share=r.number(f"{key}.busy_share"), scale_limits=(float(limits[0]), float(limits[1])),
                      targets=MappingProxyType(targets), fractions=tuple(float(f) for f in fractions),
                      anytime_datasets=tuple(datasets))


def _normalization(r: _Reader) -> dict[str, Stats]:
    """normalization.<dataset>.mean / .std: three numbers each (required from version 4)."""
    if not _has(r, "normalization"):
        if r.get("version", int) >= 4:
            raise UsageError(f"{r.where}: missing key 'normalization'; every protocol value must be given")
        return {}
    out = {}
    for dataset, values in r.get("normalization", dict).items():
        key = f"normalization.{plain(dataset, 40)}"
        if dataset not in REGISTRY:
            raise UsageError(f"{r.where}: key '{key}': unknown dataset; known: {', '.join(REGISTRY)}")
        mean, std = r.get(f"normalization.{dataset}.mean", list), r.get(f"normalization.{dataset}.std", list)
        if not all(len(v) == 3 and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
                   for v in (mean, std)) or not all(_in_range(m, (0, 1)) for m in mean) \
                or not all(_in_range(s, (1e-3, 1)) for s in std):
            raise UsageError(f"{r.where}: key '{key}': mean and std must be three numbers each (R, G, B), "
                             f"the mean from 0 to 1, the std from 0.001 to 1")
        out[dataset] = (tuple(map(float, mean)), tuple(map(float, std)))
    return out


def _data_digests(r: _Reader) -> dict[str, str]:
    """data.<dataset>: the sha256 of the splits a dataset built on the machine must have (version 6)."""
    if not _has(r, "data"):
        return {}
    out = {}
    for dataset, digest in r.get("data", dict).items():
        if dataset not in REGISTRY or not isinstance(digest, str) or len(digest) != 64 \
                or any(ch not in "0123456789abcdef" for ch in digest):
            raise UsageError(f"{r.where}: key 'data.{plain(str(dataset), 40)}': a known dataset and the 64 hex digits "
                             f"of its sha256 (bench data info NAME prints it)")
        out[dataset] = digest
    return out


def _soft_labels(r: _Reader) -> SoftLabelParams | None:
    """soft_labels: the soft-label division's objective and teacher (required from version 7)."""
    if not _has(r, "soft_labels"):
        if r.get("version", int) >= 7:
            raise UsageError(f"{r.where}: missing key 'soft_labels'; every protocol value must be given")
        return None
    epochs = r.get("soft_labels.teacher.epochs", dict)
    for dataset, count in epochs.items():
        if dataset not in REGISTRY or not isinstance(count, int) or isinstance(count, bool) \
                or not _in_range(count, EPOCH_RANGE):
            raise UsageError(f"{r.where}: key 'soft_labels.teacher.epochs.{plain(str(dataset), 40)}': a known dataset "
                             f"({', '.join(REGISTRY)}) and a whole number of epochs from {EPOCH_RANGE[0]} to {EPOCH_RANGE[1]}")
    try:
        return SoftLabelParams(loss=r.get("soft_labels.loss", str), temperature=r.number("soft_labels.temperature"),
                               tolerance=r.number("soft_labels.sum_tolerance"),
                               top_k_min=r.get("soft_labels.top_k.min", int), top_k_rest=r.get("soft_labels.top_k.rest", str),
                               teacher_arch=r.get("soft_labels.teacher.arch", str),
                               teacher_epochs=MappingProxyType(dict(epochs)),
                               teacher_seed=r.get("soft_labels.teacher.seed", int))
    except (ValueError, ArchitectureError) as exc:
        raise UsageError(f"{r.where}: soft_labels: {exc}") from None


def _architectures(r: _Reader) -> dict:
    """The challenge's network and the cross set. Versions 2 and 3 also held a table mapping every
    network to the recipe `training`, the only one; version 4 dropped it (every network trains with it)."""
    recipes = r.get("architectures.recipes", dict) if "recipes" in r.get("architectures", dict) else None
    if recipes is not None and any(value != "training" for value in recipes.values()):
        raise UsageError(f"{r.where}: architectures.recipes may only name the recipe 'training' (the only one defined)")
    cross = tuple(r.get("architectures.cross", list))
    challenge = r.get("architectures.challenge", str)
    try:
        for arch in (challenge, *cross):
            check_name(arch)
    except ArchitectureError as exc:
        raise UsageError(f"{r.where}: architectures: {exc}") from None
    missing = [a for a in (challenge, *cross) if recipes is not None and a not in recipes]
    if missing:
        raise UsageError(f"{r.where}: architectures.recipes has no entry for {', '.join(missing)}")
    return {"challenge_arch": challenge, "cross_archs": cross}


def _read_yaml(path: Path) -> object:
    """The parsed file: at most MAX_PROTOCOL_BYTES, no duplicate keys, no anchors or aliases (a
    'billion laughs' file is refused before it expands)."""
    try:
        if Path(path).stat().st_size > MAX_PROTOCOL_BYTES:
            raise UsageError(f"{path}: larger than {MAX_PROTOCOL_BYTES >> 10} KiB; not a protocol file")
        return load_yaml_text(Path(path).read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the protocol ({' '.join(str(exc).split())[:120]})") from None
    except YamlError as exc:
        raise UsageError(str(exc)) from None


@lru_cache(maxsize=1)
def released_versions() -> dict[int, dict]:
    """CHANGELOG.yaml entries by version: file, sha256, date, changes."""
    entries = _read_yaml(CHANGELOG)
    if not isinstance(entries, list) or not all(isinstance(e, dict) and {"version", "file", "sha256"} <= set(e)
                                                for e in entries):
        raise UsageError(f"{CHANGELOG}: must be a list of entries with version, file and sha256")
    return {int(e["version"]): e for e in entries}


def current_version() -> int:
    return max(released_versions())


@lru_cache(maxsize=8)
def load_protocol(version: int | None = None) -> Protocol:
    """A released protocol (the current one by default), checked against its changelog digest."""
    version = current_version() if version is None else version
    entry = released_versions().get(version)
    if entry is None:
        raise UsageError(f"protocol version {version} is not released; known: {', '.join(map(str, released_versions()))}")
    path = FOLDER / entry["file"]
    tree = _read_yaml(path)
    if _digest(tree, path) != entry["sha256"]:
        raise UsageError(f"{path}: changed after its release (its values no longer match CHANGELOG.yaml); released "
                         f"protocols are frozen: restore it with git checkout and make the change in a new version")
    return parse_protocol(tree, str(path), released=True)


def load_protocol_file(path: Path) -> Protocol:
    """A protocol file of one's own (--protocol FILE); a released file loads as that release."""
    tree = _read_yaml(path)
    digest = _digest(tree, path)
    for version, entry in released_versions().items():
        if entry["sha256"] == digest:
            return load_protocol(version)
    return parse_protocol(tree, str(path), released=False)
