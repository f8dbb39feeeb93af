"""Options shared by the commands: one frozen object flows from the command line to the core."""
from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

import torch

from evaluator.train import TrainConfig

from .errors import UsageError

ROOT_MARKER = Path("datasets") / "manifest.yaml"


def find_root(start: Path | None = None) -> Path:
    """The project root: the nearest folder upwards holding datasets/manifest.yaml."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ROOT_MARKER).is_file():
            return folder
    raise UsageError(f"no project root above {here} (a folder with {ROOT_MARKER}); run inside the harness or pass --root DIR")


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is visible to PyTorch; use --device cpu or auto")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise UsageError(f"--device {name}: expected auto, cpu or cuda[:N]")
    return name


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    cpu = platform.processor() or platform.machine()
    return f"CPU {cpu} ({torch.get_num_threads()} threads)"


@dataclass(frozen=True)
class Options:
    root: Path | None = None
    runs: int = 3
    seed: int = 0
    device: str = "cpu"
    epochs: int | None = None  # override: non-standard
    budget: float | None = None  # generation budget override: non-standard
    force: bool = False
    sandbox: bool = True  # False only by the explicit --no-sandbox opt-in: non-standard
    precision: str = "fp32"
    compile: bool | None = None

    def __post_init__(self) -> None:
        if self.runs < 1:
            raise UsageError(f"--runs {self.runs}: needs at least 1 run")
        if self.epochs is not None and self.epochs < 0:
            raise UsageError(f"--epochs {self.epochs}: must be 0 or more")
        if self.budget is not None and self.budget <= 0:
            raise UsageError(f"--budget {self.budget}: must be a positive number of seconds")

    @property
    def standard(self) -> bool:
        """False when an override changed the protocol: such rows are shown apart, unranked."""
        return self.epochs is None and self.budget is None and self.sandbox

    @property
    def project(self) -> Path:
        return self.root if self.root is not None else find_root()

    @property
    def data_dir(self) -> Path:
        return self.project / "datasets"

    def train_config(self, epochs: int) -> TrainConfig:
        return TrainConfig(epochs=self.epochs if self.epochs is not None else epochs, device=self.device,
                           precision=self.precision, compile=self.compile)
