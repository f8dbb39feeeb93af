"""The versioned protocol configuration (benchmark/config/protocol.yaml) as a frozen object."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from evaluator.ipc_epochs import IpcEpochTable

from .errors import UsageError
from .sandbox import Limits

DEFAULT_PATH = Path(__file__).parent / "protocols" / "protocol.yaml"


@dataclass(frozen=True)
class Protocol:
    version: int
    runs: int
    fixed_ipc: int
    fixed_epochs: int
    ipc_epochs: IpcEpochTable
    max_ipc: int
    budgets: dict[str, float]
    sandbox_limits: Limits

    def budget(self, dataset: str) -> float:
        if dataset not in self.budgets:
            raise UsageError(f"protocol.yaml: no generation budget for '{dataset}'; add it under generative.budget_seconds")
        return float(self.budgets[dataset])


def _get(tree: dict, dotted: str, kind: type):
    node = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise UsageError(f"protocol.yaml: missing key '{dotted}'")
        node = node[part]
    if not isinstance(node, kind) or isinstance(node, bool):
        raise UsageError(f"protocol.yaml: key '{dotted}' must be {kind.__name__}, got {type(node).__name__}")
    return node


@lru_cache(maxsize=4)
def load_protocol(path: Path = DEFAULT_PATH) -> Protocol:
    try:
        tree = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: cannot read the protocol ({' '.join(str(exc).split())[:120]})") from None
    rows = tuple((int(a), int(b)) for a, b in _get(tree, "generative.ipc_epochs.rows", list))
    try:
        table = IpcEpochTable(rows=rows, cap=_get(tree, "generative.ipc_epochs.cap", int))
    except ValueError as exc:
        raise UsageError(f"protocol.yaml: generative.ipc_epochs: {exc}") from None
    return Protocol(
        version=_get(tree, "version", int),
        runs=_get(tree, "runs", int),
        fixed_ipc=_get(tree, "fixed_ipc.ipc", int),
        fixed_epochs=_get(tree, "fixed_ipc.epochs", int),
        ipc_epochs=table,
        max_ipc=_get(tree, "generative.max_ipc", int),
        budgets=dict(_get(tree, "generative.budget_seconds", dict)),
        sandbox_limits=Limits(max_processes=_get(tree, "sandbox.max_processes", int),
                              max_open_files=_get(tree, "sandbox.max_open_files", int),
                              max_output_bytes=_get(tree, "sandbox.max_output_mib", int) << 20),
    )
