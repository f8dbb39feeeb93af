"""The shipped generative submissions run offline, sandboxed, on digits."""
import dataclasses
import importlib.util
import shutil
import sys

import pytest
import torch

from benchmark import generation, shards
from benchmark.cli import main
from benchmark.protocol import load_protocol
from benchmark.submission import parse_spec
from conftest import ROOT, read_results
from evaluator.data import load_dataset
from evaluator.leakage import check_leakage

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")]
SHIPPED = ROOT / "submissions"


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run_generator(project, folder, args=None, budget=60):
    sub = parse_spec(folder)
    if args is not None:
        sub = dataclasses.replace(sub, args=tuple(args))
    ds = load_dataset("digits", project / "datasets")
    settings = generation.Settings("cpu", 0, budget, load_protocol().sandbox_limits)
    gen = generation.generate(sub, ds, settings, lambda found: shards.collect(found, ds, load_protocol().max_ipc, 10**6))
    assert gen.returncode == 0 and gen.shards and gen.collected is not None, gen.log_tail
    return gen, gen.collected


@pytest.mark.parametrize("team,args,ipc", [
    ("mel", ["--ipc", "12", "--truncation", "0.7", "--low-res-fraction", "0.5"], 12),
    ("diffusion", ["--ipc", "6", "--steps", "10"], 6),
    ("t2i_template", ["--prompt", "a handwritten digit {name}", "--steps", "10", "--ipc", "8", "--augment", "4",
                      "--ops", "crop,rotate,color,gamma"], 8),
])
def test_shipped_generator_runs_sandboxed_with_its_committed_weights(project, team, args, ipc):
    gen, images = run_generator(project, SHIPPED / team, args)
    assert images.ipc == ipc and images.dropped == 0
    assert torch.bincount(images.labels).tolist() == [ipc] * 10
    assert images.images.float().std() > 10  # not blank
    ds, params = load_dataset("digits", project / "datasets"), load_protocol().leakage
    leak = check_leakage(images.images, images.labels, ds.test_images, ds.test_labels, ds.train_images, params)
    assert not leak.flagged, leak.matches  # generated images are not copies of test images


def test_mel_truncation_and_mixed_resolution():
    model = load_module(SHIPPED / "mel" / "model.py", "mel_model")
    g = model.load(SHIPPED / "mel" / "weights" / "digits.safetensors")
    rng = torch.Generator().manual_seed(0)
    z = model.sample_latents(4000, g.z_dim, 0.5, rng)
    assert z.std().item() == pytest.approx(0.5, abs=0.02)  # pulled halfway toward the mean
    y = torch.arange(10)
    low = g(z[:10], y, low_res=True)
    full = g(z[:10], y)
    assert low.shape == (10, 3, 4, 4) and full.shape == (10, 3, 8, 8)
    assert model.to_uint8(low, 8).shape == (10, 3, 8, 8)


def test_t2i_template_loads_a_pipeline_folder_where_sdxl_turbo_goes(project):
    """A tiny random Stable Diffusion saved at weights/sdxl-turbo: the real loading and
    generation code (AutoPipelineForText2Image, one step, guidance 0, augmentation) runs."""
    folder = project / "submissions" / "t2i"
    shutil.copytree(SHIPPED / "t2i_template", folder, ignore=shutil.ignore_patterns("weights"))
    tiny = load_module(folder / "tiny_pipeline.py", "tiny_pipeline_test")
    torch.manual_seed(0)
    tiny.build(resolution=8).save_pretrained(folder / "weights" / "sdxl-turbo")
    for path in folder.rglob("*.safetensors"):  # save_pretrained writes 0600; the sandbox user reads them
        path.chmod(0o644)
    (folder / "submission.yaml").write_text(
        "team: t2i\nmethod: tiny random pipeline\ntrack: generative\ndatasets: [digits]\n"
        "args: [--weights, weights/sdxl-turbo, --ipc, '6', --augment, '3']\n")
    assert main(["submit", "t2i", "--root", str(project), "--preset", "quick"]) == 0
    row = read_results(project)[0]
    assert (row["status"], row["ipc"], row["images_generated"]) == ("ok", "6", "60")


def test_t2i_augmentation_respects_the_chosen_operations():
    gen_module = load_module(SHIPPED / "t2i_template" / "generate.py", "t2i_generate")
    x = torch.rand(16, 3, 8, 8)
    g = torch.Generator().manual_seed(0)
    out = gen_module.augment(x, {"crop", "rotate", "color", "gamma"}, g)
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1 and not torch.allclose(out, x)
    assert torch.allclose(gen_module.augment(x, set(), g), x, atol=1e-5)  # no op: identity
    flipped = gen_module.augment(x, {"flip"}, torch.Generator().manual_seed(1))
    assert all(torch.allclose(o, i, atol=1e-5) or torch.allclose(o, i.flip(2), atol=1e-5) for o, i in zip(flipped, x))


@pytest.mark.slow
def test_make_submit_mel_full_protocol(project):
    shutil.copytree(SHIPPED / "mel", project / "submissions" / "mel")
    assert main(["submit", "mel", "--root", str(project)]) == 0
    row = read_results(project)[0]
    assert (row["status"], row["standard"], row["ipc"], row["epochs"]) == ("ok", "true", "50", "200")
    assert row["flagged"] == "false"
    assert float(row["acc_mean"]) > 50 and float(row["gen_seconds"]) < 60
    track2 = (project / "leaderboard" / "LEADERBOARD.md").read_text().split("## Track 2: generative")[1]
    assert "| 1 | mel |" in track2.split("## ")[0]
