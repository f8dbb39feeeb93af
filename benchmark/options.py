"""What one command evaluates under: the protocol, the user's overrides of it, and how to run.

`Options` is the one object that flows from the command line to scoring; its effective values
are computed once (cached) and never change. Whether a result is
standard is decided here and nowhere else: any effective value that differs from the protocol's
(runs, seeds, precision, epochs, budget, sandbox, protocol version, a preset) is a deviation, and
`deviations()` names each one. The device and torch.compile are not deviations: they must not
change a result beyond float noise (they are recorded all the same).
"""
from __future__ import annotations

import platform
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import UsageError
from .protocol import Preset, Protocol, check_override_values

if TYPE_CHECKING:
    from evaluator.data import Dataset
    from evaluator.train import TrainConfig

ROOT_MARKER = Path("datasets") / "manifest.yaml"


def find_root(start: Path | None = None) -> Path:
    """The project root: the nearest folder upwards holding datasets/manifest.yaml."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ROOT_MARKER).is_file():
            return folder
    raise UsageError(f"no project root above {here} (a folder with {ROOT_MARKER}); run inside the harness or pass --root DIR")


def resolve_device(name: str) -> str:
    import torch  # here, not above: the command line builds its help without torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is visible to PyTorch; use --device cpu or auto")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise UsageError(f"--device {name}: expected auto, cpu or cuda[:N]")
    return name


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    cpu = platform.processor() or platform.machine()
    return f"CPU {cpu} ({torch.get_num_threads()} threads)"


@dataclass(frozen=True)
class Overrides:
    """Departures from the protocol asked for on the command line; None keeps the protocol's."""
    runs: int | None = None
    seed: int | None = None  # seed of the first run; run i uses seed + i
    precision: str | None = None
    epochs: int | None = None  # training epochs, whatever the track's rule says
    budget: float | None = None  # generation budget in seconds
    sandbox: bool = True  # False only by the explicit --no-sandbox opt-in
    preset: str | None = None  # a named set of the above from the protocol file
    teacher_arch: str | None = None  # the soft-label division: another teacher network than the protocol's

    def __post_init__(self) -> None:
        problem = check_override_values(self)
        if problem:
            raise UsageError(f"--{problem}")


@dataclass(frozen=True)
class Options:
    protocol: Protocol
    overrides: Overrides = field(default_factory=Overrides)
    root: Path | None = None
    device: str = "cpu"
    force: bool = False
    compile: bool | None = None  # None: where it pays
    arch_names: tuple[str, ...] = ()  # --arch values ("cross" = the protocol's unseen set); none: convnet
    anytime: bool | None = None  # score the anytime curve of generators (None: where the protocol makes it)
    wait: float | None = 300.0  # seconds to wait for a device busy with other processes (None: refuse)

    def __post_init__(self) -> None:
        if self.wait is not None and not 0 <= self.wait <= 7 * 86_400:
            raise UsageError(f"--wait {self.wait:g}: give a number of seconds from 0 to 604800")
        self._preset  # an unknown preset name is a usage error now, not at first use
        self.archs  # so is an unknown architecture

    @cached_property
    def archs(self) -> tuple[str, ...]:
        """The networks to evaluate with; each is its own result (an identity, not a deviation)."""
        return self.protocol.expand_archs(list(self.arch_names))

    @cached_property
    def _preset(self) -> Preset:
        name = self.overrides.preset
        return self.protocol.preset(name) if name is not None else Preset()

    def _get(self, name: str):
        """An override: the command line's, else the preset's, else None (the protocol's)."""
        explicit = getattr(self.overrides, name)
        return explicit if explicit is not None else getattr(self._preset, name)

    # -- effective values ----------------------------------------------------------------------
    @cached_property
    def seeds(self) -> tuple[int, ...]:
        """Consecutive seeds (the protocol's are too): from --seed or the protocol's first."""
        runs, seed = self._get("runs"), self._get("seed")
        first = self.protocol.seeds[0] if seed is None else seed
        return tuple(range(first, first + (self.protocol.runs if runs is None else runs)))

    @property
    def runs(self) -> int:
        return len(self.seeds)

    @property
    def precision(self) -> str:
        return self._get("precision") or self.protocol.precision

    @property
    def sandbox(self) -> bool:
        return self.overrides.sandbox

    def epochs(self, protocol_epochs: int) -> int:
        """The epochs to train: the track's rule gives protocol_epochs; an override replaces it."""
        override = self._get("epochs")
        return protocol_epochs if override is None else override

    def budget(self, dataset: str) -> float:
        override = self._get("budget")
        return self.protocol.budget(dataset) if override is None else float(override)

    def calibrated(self) -> bool:
        """Generators run against the calibrated clock: the protocol has one and no --budget
        replaces its budgets (an override is plain wall time)."""
        return self.protocol.clock is not None and self._get("budget") is None

    def anytime_fractions(self, dataset: str) -> tuple[float, ...]:
        """The fractions of the budget at which a generator's images are scored too (none: no curve)."""
        rules = self.protocol.clock
        wanted = self.anytime if self.anytime is not None else bool(rules and dataset in rules.anytime_datasets)
        return rules.fractions if wanted and rules else ()

    # -- the one place that decides what is standard ----------------------------------------------
    def deviations(self, protocol_epochs: int | None, generation_dataset: str | None = None,
                   clock: str = "") -> tuple[str, ...]:
        """Every way this evaluation departs from the protocol, named (`runs=1 precision=bf16`).
        protocol_epochs: what the track's rule gives (None for a generator: any override departs);
        generation_dataset: the dataset whose generation budget applies (generative track only);
        clock: how the generation's clock went (benchmark.clock.Reading.state): an unstable clock,
        a budget whose scale the protocol's limits clamped, or a device of another kind than the
        target's is not the protocol's clock."""
        p, out = self.protocol, []
        if not p.released:
            out.append(f"protocol={p.label}")
        if self.overrides.preset is not None:
            out.append(f"preset={self.overrides.preset}")
        if self.runs != p.runs:
            out.append(f"runs={self.runs}")
        if self.seeds[0] != p.seeds[0]:
            out.append(f"seed={self.seeds[0]}")
        if self.precision != p.precision:
            out.append(f"precision={self.precision}")
        if self.epochs_key(protocol_epochs) is not None:
            out.append(f"epochs={self._get('epochs')}")
        budget = self._get("budget")
        if generation_dataset is not None and budget is not None and budget != p.budget(generation_dataset):
            out.append(f"budget={float(budget):g}s")
        if generation_dataset is not None and not self.sandbox:
            out.append("no-sandbox")
        if clock in ("unstable", "clamped", "mismatch"):
            out.append(f"clock={clock}")
        return tuple(out)

    @property
    def teacher_arch(self) -> str | None:
        """--teacher-arch when it departs from the protocol's teacher (None: the protocol's); a
        deviation of the rows an online teacher labels (`scoring.label_fields`), and only of them."""
        arch, soft = self.overrides.teacher_arch, self.protocol.soft_labels
        return arch if arch is not None and (soft is None or arch != soft.teacher_arch) else None

    def identity(self) -> dict:
        """What, besides the submission, the data and the epochs (`epochs_key`), makes two
        evaluations the same."""
        return {"protocol": self.protocol.digest, "seeds": list(self.seeds), "precision": self.precision,
                "preset": self.overrides.preset}

    def epochs_key(self, rule_epochs: int | None) -> int | None:
        """The --epochs override when it departs from the track's rule (None: the rule's epochs,
        or not yet known), exactly when `deviations` names it."""
        override = self._get("epochs")
        return override if override is not None and override != rule_epochs else None

    # -- where and how ----------------------------------------------------------------------------
    @cached_property
    def project(self) -> Path:
        return self.root if self.root is not None else find_root()

    @property
    def project_if_any(self) -> Path | None:
        """The project root, or None when run outside one (bench evaluate --test anywhere)."""
        try:
            return self.project
        except UsageError:
            return None

    @property
    def data_dir(self) -> Path:
        return self.project / "datasets"

    def dataset(self, name: str, need_train: bool = False) -> Dataset:
        """The dataset as the protocol defines it: its images, normalised with the protocol's
        statistics (`normalization`)."""
        from evaluator.data import data_digest, load_dataset
        from evaluator.errors import DatasetError

        ds = load_dataset(name, self.data_dir, need_train=need_train)
        expected = self.protocol.data_digests.get(name)
        actual = data_digest(ds) if expected is not None else None
        if actual != expected:
            raise DatasetError(f"{name}: the data built here differ from protocol {self.protocol.label}'s (sha256 "
                               f"{actual[:12]}, expected {expected[:12]}); delete datasets/cache/{name} and "
                               f"run again, else this scikit-learn/Pillow decodes its data differently: report it")
        mean, std = self.protocol.stats(name)
        return replace(ds, info=replace(ds.info, mean=mean, std=std))

    def train_config(self, protocol_epochs: int, arch: str | None = None) -> TrainConfig:
        from evaluator.train import TrainConfig

        arch = arch or self.protocol.challenge_arch
        return TrainConfig(recipe=self.protocol.recipe, epochs=self.epochs(protocol_epochs),
                           precision=self.precision, arch=arch, device=self.device, compile=self.compile)
