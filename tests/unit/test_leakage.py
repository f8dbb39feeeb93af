"""The leakage check itself: copies are matched, honest images never are, blends, retrieval."""
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT

from benchmark.protocol import load_protocol
from evaluator.data import load_dataset
from evaluator.leakage import LeakParams, check_leakage
from evaluator.normalize import normalize

P = load_protocol().leakage
DIGITS = load_dataset("digits", None)


sys.path.insert(0, str(ROOT / "perf"))
from leakage_hits import nearest_training, pick, shifted, u8  # noqa: E402  (the disguises the perf script measures)

TEST10, TEST_LABELS = pick(DIGITS.test_images, DIGITS.test_labels, 10)
NOISE = torch.randn(TEST10.shape, generator=torch.Generator().manual_seed(1)) * 8
COPIES = {
    "exact": TEST10, "flipped": TEST10.flip(-1), "shifted 2 px": shifted(TEST10, 2, 0),
    "shifted 2 px diagonally": shifted(TEST10, -2, 2), "brightness +20 %": u8(TEST10.float() * 1.2),
    "brightness -20 %": u8(TEST10.float() * 0.8), "noise 8/255": u8(TEST10.float() + NOISE),
    "contrast and colour": u8((TEST10.float() - 128) * torch.tensor([0.8, 0.7, 0.9]).view(1, 3, 1, 1) + 140),
    "re-quantised to 8 levels": u8((TEST10.float() / 32).round() * 32),
    "flipped, shifted, brighter and noisy": u8(shifted(TEST10.flip(-1), 1, 2).float() * 1.1 + NOISE),
}


@pytest.mark.parametrize("case", list(COPIES))
def test_copies_of_test_images_are_matched_and_flagged(case):
    report = check_leakage(COPIES[case], TEST_LABELS, DIGITS.test_images, DIGITS.test_labels, DIGITS.train_images, P)
    assert report.matched >= 95 and report.flagged
    assert all(DIGITS.test_labels[m.test_image] == TEST_LABELS[m.image] for m in report.matches)


@pytest.mark.parametrize("ipc", [10, 50])
def test_random_training_images_are_never_matched(ipc):
    for seed in range(3):
        images, labels = pick(DIGITS.train_images, DIGITS.train_labels, ipc, seed)
        report = check_leakage(images, labels, DIGITS.test_images, DIGITS.test_labels, DIGITS.train_images, P)
        assert report.matched == 0 and not report.flagged


def test_synthetic_images_close_to_the_data_are_not_matched():
    """Class means (blurry, like distribution matching's images), augmented training images,
    blends of two training images and noise: none is a copy of a test image."""
    train, labels = DIGITS.train_images, DIGITS.train_labels
    means = torch.stack([train[labels == c].float().mean(0) for c in range(10)]).repeat_interleave(10, 0)
    some, some_labels = pick(train, labels, 10)
    others, _ = pick(train, labels, 10, seed=5)
    sets = [u8(means), u8(shifted(some.flip(-1), 1, 1).float() * 1.1 + NOISE), u8((some.float() + others.float()) / 2),
            torch.randint(0, 256, some.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(2))]
    for images in sets:
        report = check_leakage(images, some_labels, DIGITS.test_images, DIGITS.test_labels, train, P)
        assert not report.flagged, report.matches


def test_a_training_image_that_duplicates_a_test_image_is_not_a_leak():
    """Several percent of CIFAR's test images have a near duplicate in the training set: the
    ratio test must not count them. Here the training set is made to contain the test copies."""
    train = torch.cat([DIGITS.train_images, TEST10])
    report = check_leakage(TEST10, TEST_LABELS, DIGITS.test_images, DIGITS.test_labels, train, P)
    assert report.matched == 0


def test_a_copy_under_another_label_teaches_nothing_and_is_not_counted():
    wrong = (TEST_LABELS + 1) % 10
    report = check_leakage(TEST10, wrong, DIGITS.test_images, DIGITS.test_labels, DIGITS.train_images, P)
    assert report.matched == 0


def test_the_retrieval_stage_finds_the_same_copies_as_the_exhaustive_one(monkeypatch):
    """Large sets are compared through retrieved candidates: at 32 px (digits upscaled over a
    textured background) both stages agree on copies and on honest images."""
    from evaluator import leakage

    g = torch.Generator().manual_seed(3)
    texture = torch.randint(0, 256, (1, 3, 32, 32), generator=g).float()
    up = lambda x: u8(F.interpolate(x.float(), size=32, mode="bilinear", align_corners=False) * 0.7 + texture * 0.3)  # noqa: E731
    test, train, train_labels = up(DIGITS.test_images), up(DIGITS.train_images[:300]), DIGITS.train_labels[:300]
    originals, labels = pick(DIGITS.test_images, DIGITS.test_labels, 4)
    copies = u8(shifted(up(originals).flip(-1), 2, -1).float() * 0.85)
    honest, honest_labels = pick(train, train_labels, 3)
    for threshold in (1 << 60, 0):  # exhaustive, then retrieval
        monkeypatch.setattr(leakage, "EXHAUSTIVE_PIXEL_PAIRS", threshold)
        assert check_leakage(copies, labels, test, DIGITS.test_labels, train, P).matched >= 38
        assert check_leakage(honest, honest_labels, test, DIGITS.test_labels, train, P).matched == 0


def test_leak_parameters_are_range_checked():
    with pytest.raises(ValueError, match="ratio"):
        LeakParams(max_shift=2, coarse_size=8, candidates=8, max_distance=0.1, ratio=float("nan"), blend_ratio=0.25, max_fraction=0.01)


@pytest.mark.parametrize("weight", [0.45, 0.6])
def test_test_images_blended_with_their_nearest_training_image_are_flagged(weight):
    """A blend sits between the test image and the training set, so the distance ratio alone
    misses it; the nearest training image and the test image together explain it exactly."""
    blend = u8((1 - weight) * TEST10.float() + weight * nearest_training(TEST10, TEST_LABELS, DIGITS.train_images, DIGITS.train_labels))
    report = check_leakage(blend, TEST_LABELS, DIGITS.test_images, DIGITS.test_labels, DIGITS.train_images, P)
    assert report.flagged and report.matched >= 90


def test_blends_of_two_training_images_are_not_flagged():
    for seed in range(4):
        a, labels = pick(DIGITS.train_images, DIGITS.train_labels, 10, seed)
        b, _ = pick(DIGITS.train_images, DIGITS.train_labels, 10, seed + 10)
        for weight in (0.3, 0.5):
            blend = u8((1 - weight) * a.float() + weight * b.float())
            report = check_leakage(blend, labels, DIGITS.test_images, DIGITS.test_labels, DIGITS.train_images, P)
            assert not report.flagged, (seed, weight, report.matches)


def test_float_images_in_0_1_are_warned_about():
    from benchmark.validate import normalisation_warning

    images = TEST10.float() / 255
    assert "every value lies in [0, 1]" in normalisation_warning(Path("digits.pt"), images)
    assert normalisation_warning(Path("digits.pt"), normalize(TEST10, DIGITS.info.mean, DIGITS.info.std)) is None
