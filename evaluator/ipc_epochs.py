"""Training epochs for an IPC: the thesis' IPC-epoch table (Table 4.1) and its rule.

Rows of the table are used as they are. Between and beyond the rows the number of image-steps
per run is kept constant: epochs = floor(K / ipc + 0.5), where K = ipc x epochs of the nearest
row at or below ipc (the first row below the table). With the thesis' rows K = 10,000 everywhere.
Training is capped at `cap` epochs and never below 1. Rows and cap come from the protocol file.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

@dataclass(frozen=True)
class IpcEpochTable:
    rows: tuple[tuple[int, int], ...]
    cap: int

    def __post_init__(self) -> None:
        if not self.rows:
            raise ValueError("the IPC-epoch table needs at least one row")
        ipcs = [ipc for ipc, _ in self.rows]
        if ipcs != sorted(set(ipcs)) or any(ipc < 1 or ep < 1 for ipc, ep in self.rows):
            raise ValueError(f"IPC-epoch rows must have increasing positive IPCs and positive epochs: {self.rows}")
        if self.cap < 1:
            raise ValueError(f"epoch cap must be positive, got {self.cap}")

    def image_steps(self, ipc: int) -> int:
        below = [row for row in self.rows if row[0] <= ipc]
        ref_ipc, ref_epochs = below[-1] if below else self.rows[0]
        return ref_ipc * ref_epochs

    def epochs(self, ipc: int) -> int:
        if ipc < 1:
            raise ValueError(f"IPC must be at least 1, got {ipc}")
        table = dict(self.rows)
        raw = table[ipc] if ipc in table else math.floor(self.image_steps(ipc) / ipc + 0.5)
        return max(1, min(self.cap, raw))
