"""The protocol file is the only source of every value that affects a score.

- released versions are frozen (a changed number is refused) and listed in the changelog;
- every value reaches the place that uses it (the training loop, the generator, the sandbox);
- every override makes a result non-standard and is named, and nothing else does.
"""
import dataclasses
import shutil

import pytest
import torch
from conftest import train_config

from benchmark import protocol as proto
from benchmark.cli import build_parser
from benchmark.commands._common import options
from benchmark.errors import UsageError
from benchmark.options import Options
from benchmark.protocol import (
    content_digest,
    load_protocol,
    load_protocol_file,
    released_versions,
)
from evaluator import dsa
from evaluator import train as tr
from evaluator.evaluate import evaluate
from evaluator.train import Task, train_and_test

P = load_protocol()


# -- frozen, versioned -----------------------------------------------------------------------------

def test_every_released_file_matches_its_changelog_digest_and_every_file_is_released():
    import yaml

    files = sorted(p.name for p in proto.FOLDER.glob("v*.yaml"))
    assert files == sorted(e["file"] for e in released_versions().values())
    for entry in released_versions().values():
        assert content_digest(yaml.safe_load((proto.FOLDER / entry["file"]).read_text())) == entry["sha256"]
        assert entry["changes"].strip()
    assert P.version == max(released_versions()) and P.released


def test_a_number_changed_in_a_released_file_is_refused(tmp_path, monkeypatch):
    original, folder = proto.FOLDER, tmp_path / "protocols"
    shutil.copytree(original, folder)
    path = folder / f"v{P.version}.yaml"
    path.write_text(path.read_text().replace("lr: 0.01", "lr: 0.02"))
    monkeypatch.setattr(proto, "FOLDER", folder)
    monkeypatch.setattr(proto, "CHANGELOG", folder / "CHANGELOG.yaml")
    proto.load_protocol.cache_clear()
    proto.released_versions.cache_clear()
    try:
        with pytest.raises(UsageError, match="changed after its release"):
            load_protocol()
        # comments and layout may change: only values are frozen
        path.write_text((original / path.name).read_text().replace("# The evaluation protocol", "# Protocol"))
        proto.load_protocol.cache_clear()
        assert load_protocol().digest == P.digest
    finally:
        proto.load_protocol.cache_clear()
        proto.released_versions.cache_clear()


def test_the_released_protocol_is_the_challenges():
    r, a = P.recipe, P.recipe.augmentation
    assert (P.seeds, P.precision, P.fixed_ipc, P.fixed_epochs) == ((0, 1, 2), "fp32", 10, 1000)
    assert (r.optimizer, r.lr, r.momentum, r.weight_decay, r.batch_size) == ("sgd", 0.01, 0.9, 0.0005, 256)
    assert (r.schedule, r.decay_factor) == ("official-step", 0.1)
    assert a.ops == ("color", "crop", "cutout", "flip", "scale", "rotate")
    assert (a.brightness, a.saturation, a.contrast, a.crop, a.cutout, a.flip, a.scale, a.rotate) == \
        (1.0, 2.0, 0.5, 0.125, 0.5, 0.5, 1.2, 15.0)
    assert P.ipc_epochs.rows == ((10, 1000), (50, 200), (100, 100), (500, 20)) and P.ipc_epochs.cap == 1000
    assert P.budget("cifar100") == P.budget("tinyimagenet") == 300 and P.budget("digits") == 60
    assert P.stats("cifar100") == ((0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762))  # the official scorer's
    assert P.stats("tinyimagenet") == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def test_versions_before_4_normalise_as_version_4_does():
    """Versions 2 and 3 took the statistics from the dataset registry; version 4 named the same."""
    from evaluator.registry import REGISTRY

    assert set(P.normalization) == set(REGISTRY)
    for version in (2, 3):
        old = load_protocol(version)
        assert old.normalization == {} and all(old.stats(d) == P.stats(d) for d in REGISTRY)


@pytest.mark.parametrize("change,message", [
    (lambda text: text.split("normalization:")[0] + "fixed_ipc:" + text.split("fixed_ipc:")[1], "missing key 'normalization'"),
    (lambda text: text.replace("std: [0.229, 0.224, 0.225]", "std: [0.229, 0.0, 0.225]"), "std from 0.001 to 1"),
    (lambda text: text.replace("mean: [0.485, 0.456, 0.406]", "mean: [0.485, 0.456]"), "three numbers each"),
    (lambda text: text.replace("  tinyimagenet:\n    mean", "  imagenet:\n    mean"), "unknown dataset"),
])
def test_a_file_of_ones_own_needs_a_sound_normalization(tmp_path, change, message):
    path = tmp_path / "mine.yaml"
    path.write_text(change((proto.FOLDER / f"v{P.version}.yaml").read_text()))
    with pytest.raises(UsageError, match=message):
        load_protocol_file(path)


def test_a_file_of_ones_own_loads_as_custom_and_a_copy_of_a_release_as_that_release(tmp_path):
    same = tmp_path / "same.yaml"
    same.write_text((proto.FOLDER / f"v{P.version}.yaml").read_text())
    assert load_protocol_file(same) == P
    mine = tmp_path / "mine.yaml"
    mine.write_text(same.read_text().replace("lr: 0.01", "lr: 0.05"))
    custom = load_protocol_file(mine)
    assert not custom.released and custom.recipe.lr == 0.05 and custom.label.startswith("custom-")
    broken = tmp_path / "broken.yaml"
    broken.write_text(same.read_text().replace("  momentum: 0.9\n", ""))
    with pytest.raises(UsageError, match="missing key 'training.momentum'"):
        load_protocol_file(broken)


# -- every training value reaches the loop ----------------------------------------------------------

def spy_run(monkeypatch, recipe, epochs=4, n=300):
    """Train a toy task with this recipe; return what the loop used."""
    seen = {"optimizers": [], "batches": [], "ops": [], "params": []}
    real_opt, real_functions = tr.make_optimizer, dict(dsa._FUNCTIONS)
    monkeypatch.setattr(tr, "make_optimizer", lambda m, lr, cfg: seen["optimizers"].append(real_opt(m, lr, cfg))
                        or seen["optimizers"][-1])
    for name, fn in real_functions.items():
        def spy(x, p, gen, name=name, fn=fn):
            seen["ops"].append(name)
            seen["params"].append(p)
            return fn(x, p, gen)
        monkeypatch.setitem(dsa._FUNCTIONS, name, spy)
    cfg = train_config(epochs, recipe=recipe, compile=False)
    net = tr._Network.get(5, 8, cfg, compiled=False)
    hook = net.module.register_forward_pre_hook(lambda m, inp: seen["batches"].append(inp[0].shape[0]))
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 3, 8, 8, generator=g), torch.arange(n) % 5
    try:
        train_and_test(Task(x, y, x[:10], y[:10], 5), cfg, seed=0)
    finally:
        hook.remove()
    return seen


@pytest.mark.parametrize("name,value,read", [
    ("lr", 0.05, lambda s: s["optimizers"][0].param_groups[0]["lr"]),
    ("momentum", 0.5, lambda s: s["optimizers"][0].param_groups[0]["momentum"]),
    ("weight_decay", 0.01, lambda s: s["optimizers"][1].param_groups[0]["weight_decay"]),
    ("decay_factor", 0.5, lambda s: s["optimizers"][1].param_groups[0]["lr"] / s["optimizers"][0].param_groups[0]["lr"]),
    ("batch_size", 64, lambda s: max(s["batches"][:-1])),
])
def test_recipe_values_reach_the_training_loop(monkeypatch, name, value, read):
    seen = spy_run(monkeypatch, dataclasses.replace(P.recipe, **{name: value}))
    assert read(seen) == pytest.approx(value)
    assert read(spy_run(monkeypatch, P.recipe)) == pytest.approx(getattr(P.recipe, name))


def test_dsa_ops_and_none_reach_the_training_loop(monkeypatch):
    only_flip = dataclasses.replace(P.recipe, augmentation=dataclasses.replace(P.recipe.augmentation, ops=("flip",)))
    seen = spy_run(monkeypatch, only_flip)
    assert set(seen["ops"]) == {"flip"} and len(seen["ops"]) == 5 * 2  # one op per batch, 2 batches x 5 passes
    assert spy_run(monkeypatch, dataclasses.replace(P.recipe, augmentation=None))["ops"] == []
    assert len(set(spy_run(monkeypatch, P.recipe, epochs=20)["ops"])) > 3


MAGNITUDES = {"brightness": ("color", 0.1), "saturation": ("color", 0.5), "contrast": ("color", 0.9),
              "crop": ("crop", 0.4), "cutout": ("cutout", 0.25), "flip": ("flip", 1.0), "scale": ("scale", 1.5),
              "rotate": ("rotate", 60.0)}


@pytest.mark.parametrize("name", sorted(MAGNITUDES))
def test_dsa_magnitudes_reach_the_training_loop_and_change_the_augmentation(monkeypatch, name):
    op, value = MAGNITUDES[name]
    changed = dataclasses.replace(P.recipe.augmentation, **{name: value})
    seen = spy_run(monkeypatch, dataclasses.replace(P.recipe, augmentation=changed))
    assert all(getattr(p, name) == value for p in seen["params"]) and seen["params"]
    x = torch.randn(64, 3, 32, 32)
    out = [dsa.augment(x, op, params, torch.Generator().manual_seed(1)) for params in (P.recipe.augmentation, changed)]
    assert not torch.allclose(out[0], out[1])  # the op uses the value, not a constant of its own


def test_seeds_epochs_and_precision_reach_the_loop_through_options():
    p = dataclasses.replace(P, seeds=(5, 6), fixed_epochs=3, precision="bf16")
    opts = Options(protocol=p)
    cfg = opts.train_config(p.fixed_epochs)
    assert (cfg.epochs, cfg.passes, cfg.precision, cfg.recipe) == (3, 4, "bf16", P.recipe)
    x, y = torch.randn(20, 3, 8, 8), torch.arange(20) % 5
    ev = evaluate(Task(x, y, x, y, 5), dataclasses.replace(cfg, compile=False), opts.seeds)
    assert [r.seed for r in ev.runs] == [5, 6] and all(r.passes == 4 for r in ev.runs)


# -- overrides: named, and the only way to be non-standard --------------------------------------------

def parsed(*argv):
    return options(build_parser().parse_args(["submit", "x", *argv]))


@pytest.mark.parametrize("argv,named", [
    ((), ""),
    (("--runs", "3", "--seed", "0", "--precision", "fp32"), ""),  # the protocol's own values
    (("--device", "cpu", "--no-compile", "--force"), ""),  # how to run is not a deviation
    (("--runs", "1"), "runs=1"),
    (("--runs", "4"), "runs=4"),
    (("--seed", "7"), "seed=7"),
    (("--precision", "bf16"), "precision=bf16"),
    (("--epochs", "5"), "epochs=5"),
    (("--epochs", "1000"), ""),  # what the fixed-IPC rule gives anyway
    (("--preset", "quick"), "preset=quick runs=1 epochs=2"),
    (("--runs", "1", "--precision", "bf16", "--seed", "7"), "runs=1 seed=7 precision=bf16"),
])
def test_every_override_is_named_and_nothing_else_is(argv, named):
    assert " ".join(parsed(*argv).deviations(P.fixed_epochs)) == named


def test_generation_overrides_are_named_for_generators_only():
    assert parsed("--budget", "30").deviations(1000, "digits") == ("budget=30s",)
    assert parsed("--budget", "60").deviations(1000, "digits") == ()  # the protocol's digits budget
    assert parsed("--no-sandbox").deviations(1000, "digits") == ("no-sandbox",)
    assert parsed("--budget", "30").deviations(1000) == ()  # a fixed-IPC row is not generated


def test_a_protocol_file_of_ones_own_is_named(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text((proto.FOLDER / f"v{P.version}.yaml").read_text().replace("batch_size: 256", "batch_size: 128"))
    opts = parsed("--protocol", str(mine))
    assert opts.protocol.recipe.batch_size == 128
    assert opts.deviations(P.fixed_epochs) == (f"protocol={opts.protocol.label}",)
