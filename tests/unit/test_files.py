"""Accepted tensor-file formats and the one-line rejection messages."""
import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from evaluator.errors import ImageFileError
from evaluator.files import load_image_set

C, R = 10, 8
MAX = 1000 * C  # the most images accepted here


def official(ipc=2):
    return torch.randn(ipc * C, 3, R, R)


def test_official_float_tensor_gets_class_ordered_labels(tmp_path):
    path = tmp_path / "digits.pt"
    torch.save(official(3), path)
    s = load_image_set(path, C, R, MAX)
    assert s.layout == "official" and not s.is_uint8
    assert s.labels.tolist() == [c for c in range(C) for _ in range(3)]
    assert torch.equal(s.normalized((0.5,) * 3, (0.5,) * 3), torch.load(path))  # floats are not renormalised


def test_dict_pt_with_uint8_images_is_normalised(tmp_path):
    path = tmp_path / "d.pt"
    images = torch.full((C, 3, R, R), 255, dtype=torch.uint8)
    torch.save({"images": images, "labels": torch.arange(C)}, path)
    s = load_image_set(path, C, R, MAX)
    assert s.is_uint8 and s.layout == "dict"
    x = s.normalized((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    assert x.dtype == torch.float32 and torch.allclose(x, torch.full_like(x, 2.0))


def test_safetensors_with_float_images_and_int32_labels(tmp_path):
    path = tmp_path / "d.safetensors"
    save_file({"images": torch.randn(2 * C, 3, R, R), "labels": torch.arange(2 * C, dtype=torch.int32) % C}, str(path))
    s = load_image_set(path, C, R, MAX)
    assert s.labels.dtype == torch.int64 and s.class_counts(C).tolist() == [2] * C


def expect_error(path, fragment):
    with pytest.raises(ImageFileError) as info:
        load_image_set(path, C, R, MAX)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and fragment in message, message
    return message


@pytest.mark.parametrize("shape,fragment", [
    ((20, 3, 16, 16), "expected N x 3 x 8 x 8"),
    ((20, 1, 8, 8), "expected N x 3 x 8 x 8"),
    ((20, 3 * 8 * 8), "expected N x 3 x 8 x 8"),
])
def test_wrong_shape_is_rejected(tmp_path, shape, fragment):
    path = tmp_path / "x.pt"
    torch.save({"images": torch.zeros(shape), "labels": torch.arange(20) % C}, path)
    expect_error(path, fragment)


def test_nan_images_are_rejected(tmp_path):
    x = official()
    x[3, 1, 2, 2] = float("nan")
    x[4, 0, 0, 0] = float("inf")
    torch.save(x, tmp_path / "x.pt")
    expect_error(tmp_path / "x.pt", "2 NaN or infinite values")


def test_labels_out_of_range_are_rejected(tmp_path):
    torch.save({"images": torch.zeros(C, 3, R, R), "labels": torch.arange(C) + 1}, tmp_path / "x.pt")
    expect_error(tmp_path / "x.pt", "labels out of range (1..10); expected class indices 0..9")


def test_wrong_class_count_official_format(tmp_path):
    torch.save(torch.zeros(95, 3, R, R), tmp_path / "x.pt")
    expect_error(tmp_path / "x.pt", "95 images do not split evenly over 10 classes")


def test_missing_classes_in_dict_format(tmp_path):
    torch.save({"images": torch.zeros(14, 3, R, R), "labels": torch.arange(14) % 7}, tmp_path / "x.pt")
    expect_error(tmp_path / "x.pt", "no images for 3 of 10 classes (7, 8, 9)")


def test_float_labels_and_length_mismatch(tmp_path):
    torch.save({"images": torch.zeros(C, 3, R, R), "labels": torch.arange(C).float()}, tmp_path / "a.pt")
    expect_error(tmp_path / "a.pt", "labels have dtype torch.float32")
    torch.save({"images": torch.zeros(C, 3, R, R), "labels": torch.arange(C - 1)}, tmp_path / "b.pt")
    expect_error(tmp_path / "b.pt", "expected one label per image (10,)")


def test_wrong_dtype_and_missing_key_and_other_objects(tmp_path):
    torch.save({"images": torch.zeros(C, 3, R, R, dtype=torch.int32), "labels": torch.arange(C)}, tmp_path / "a.pt")
    expect_error(tmp_path / "a.pt", "expected uint8 (0-255 RGB) or float")
    torch.save({"images": torch.zeros(C, 3, R, R)}, tmp_path / "b.pt")
    expect_error(tmp_path / "b.pt", "missing key 'labels'")
    torch.save([1, 2, 3], tmp_path / "c.pt")
    expect_error(tmp_path / "c.pt", "holds a list")


def test_missing_file_and_unknown_suffix(tmp_path):
    expect_error(tmp_path / "nope.pt", "file not found")
    (tmp_path / "x.npy").write_bytes(b"\x93NUMPY")
    expect_error(tmp_path / "x.npy", "unsupported file type '.npy'")


class Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


MARKER = Path("/tmp") / f"ddbench-pwned-{os.getpid()}"


@pytest.mark.parametrize("how", ["torch.save", "raw pickle"])
def test_pickle_that_would_execute_code_is_refused_and_nothing_runs(tmp_path, how):
    path = tmp_path / "evil.pt"
    payload = {"images": torch.zeros(C, 3, R, R), "labels": torch.arange(C), "x": Exploit()}
    if how == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    MARKER.unlink(missing_ok=True)
    expect_error(path, "refused to load")
    assert not MARKER.exists()


def test_truncated_and_garbage_files_are_refused(tmp_path):
    good = tmp_path / "good.pt"
    torch.save(official(), good)
    (tmp_path / "cut.pt").write_bytes(good.read_bytes()[:200])
    expect_error(tmp_path / "cut.pt", "refused to load")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    expect_error(tmp_path / "junk.safetensors", "refused to load")
