"""What the calibrated generation clock is for: a generator's IPC on a quiet machine and with CPU
hogs running throughout its generation, through `bench submit` (sandboxed, protocol clock).

    python perf/clock_contention.py [--team diffusion] [--ipc 1000] [--hogs 1]

Copies the shipped submission into a scratch project, with `--ipc` replacing the submission's own
cap (1000: as many images as the budget allows, so the clock, not the cap, decides), and runs it
twice: quiet, then with `--hogs` busy-looping processes started before the generation and kept
until it ends. Prints, per run, the IPC, images made, the device scores, the effective budget and
the clock's verdict. Run it on an otherwise idle machine: anything else running is contention too.
"""
from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run(project: Path, team: str, hogs: int) -> dict:
    from benchmark.cli import main

    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(hogs)]
    try:
        time.sleep(1 if hogs else 0)
        main(["submit", team, "--root", str(project), "--preset", "quick", "--device", "cpu", "--no-anytime",
              "--wait", "0", "--force"])
    finally:
        for p in procs:
            p.kill()
    with (project / "leaderboard" / "results.csv").open(newline="") as f:
        return [r for r in csv.DictReader(f) if r["team"] == team][-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--team", default="diffusion")
    ap.add_argument("--ipc", type=int, default=1000)
    ap.add_argument("--hogs", type=int, default=1)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "datasets").mkdir()
        shutil.copy(ROOT / "datasets" / "manifest.yaml", project / "datasets")
        folder = project / "submissions" / a.team
        shutil.copytree(ROOT / "submissions" / a.team, folder)
        spec = yaml.safe_load((folder / "submission.yaml").read_text())
        args = list(spec.get("args", []))
        if "--ipc" in args:
            args[args.index("--ipc") + 1] = str(a.ipc)
        spec["args"] = args
        (folder / "submission.yaml").write_text(yaml.safe_dump(spec))
        shutil.os.chmod(tmp, 0o755)
        rows = {"quiet": run(project, a.team, 0), f"{a.hogs} hog(s)": run(project, a.team, a.hogs)}
    keys = ("ipc", "images_generated", "gen_seconds", "budget_effective", "device_score", "device_score_after",
            "others_cpu", "clock", "nonstandard")
    print(f"{'':12}" + "".join(f"{k:>20}" for k in keys))
    for name, r in rows.items():
        print(f"{name:12}" + "".join(f"{r[k][:18]:>20}" for k in keys))
    quiet, busy = (int(r["ipc"] or 0) for r in rows.values())
    print(f"IPC with load / quiet: {busy / quiet:.2f}" if quiet else "no IPC on the quiet run")


if __name__ == "__main__":
    main()
