"""bench calibrate: the device's score on the calibration workload (the generation clock's unit)."""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from evaluator.registry import REGISTRY, get_info

from ..clock import SHAPES, WORKLOAD_VERSION
from ..console import info
from ..errors import UsageError
from ._common import protocol_of


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="measure the device's score on the calibration workload",
                       description="Time the fixed calibration workload (matrix products, 3x3 convolutions at the "
                                   "dataset's resolution, memory copies) on a device and print its score: rounds per "
                                   "second, the upper quartile of timed samples, with their spread. The harness measures the "
                                   "same before and after every generation and scales the budget by the protocol's "
                                   "target score / this score (docs/PROTOCOL.md, 'The generation clock').")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default auto)")
    p.add_argument("--dataset", default="digits", choices=sorted(REGISTRY),
                   help="the resolution and the protocol target to compare with (default digits)")
    p.add_argument("--workload", choices=sorted(SHAPES), default=None,
                   help="default: the dataset's target workload, else the one of the device")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="measure N times and report the spread between them (default 1)")
    p.add_argument("--protocol", default=None, metavar="FILE", type=Path, help="a protocol file of your own")
    p.add_argument("--json", action="store_true", help="print the measurements as one JSON object on stdout")
    p.set_defaults(handler=cmd_calibrate)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from .. import clock
    from ..options import device_name, resolve_device

    if not 1 <= args.repeat <= 100:
        raise UsageError(f"--repeat {args.repeat}: give 1 to 100 measurements")
    protocol = protocol_of(args)
    device = resolve_device(args.device)
    resolution = get_info(args.dataset).resolution
    target = protocol.target(args.dataset)
    workload = args.workload or (target.workload if target else clock.default_workload(device))
    samples = protocol.clock.samples if protocol.clock else 15
    scores = []
    for i in range(args.repeat):
        scores.append(clock.measure_fresh(device, resolution, workload, samples))
        if not args.json:
            info(f"{i + 1}/{args.repeat}: " + scores[-1].text() if args.repeat > 1 else scores[-1].text())
    values = [s.value for s in scores]
    median = statistics.median(values)
    between = (max(values) - min(values)) / median
    tolerance = protocol.clock.tolerance if protocol.clock else None
    report = {"device": device_name(device), "workload": workload, "workload_version": WORKLOAD_VERSION,
              "resolution": resolution, "score": median, "spread_within": statistics.median(s.spread for s in scores),
              "spread_between": between if len(values) > 1 else None, "scores": values,
              "protocol_version": protocol.label, "tolerance": tolerance}
    if target is not None:
        budget = clock.effective_budget(protocol.budget(args.dataset), target.score, median, protocol.clock.scale_limits)
        report.update(target_score=target.score, target_device=target.device, target_workload=target.workload,
                      budget_seconds=protocol.budget(args.dataset), effective_budget_seconds=budget.seconds,
                      clock=budget.clock if target.workload == workload else "other-workload")
    if args.json:
        print(json.dumps(report), flush=True)
        return 0
    info(f"score {median:.2f} rounds/s on {report['device']} ({workload} workload v{WORKLOAD_VERSION}, "
         f"{resolution} px)" + (f"; between the {len(values)} measurements: {between:.1%} (max - min over median"
                                f"{f', protocol tolerance {tolerance:.0%}' if tolerance else ''})" if len(values) > 1 else ""))
    if target is None:
        info(f"protocol {protocol.label} names no target device for {args.dataset}: its budget is unscaled wall time")
    elif target.workload != workload:
        info(f"the target for {args.dataset} was measured with the {target.workload} workload, not {workload}")
    else:
        info(f"{args.dataset}: target {target.score:g} ({target.device}); a generation here would get "
             f"{report['effective_budget_seconds']:.1f} s for the protocol's {report['budget_seconds']:g} s"
             f"{' (scale clamped to the protocol limits: not ranked)' if budget.clock == 'clamped' else ''}")
    return 0
