"""Soft labels: the stored formats and their one-line refusals, the objective, the FLOP count."""
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from evaluator import archs
from evaluator.convnet import conv_flops_per_image
from evaluator.errors import ImageFileError
from evaluator.softlabels import SoftTargets, distillation_loss, forward_flops, load_soft_labels, stored_bytes
from evaluator.tensorfile import open_tensor_file
from evaluator.train import Task, train_and_test
from tests.conftest import train_config

N, C = 6, 4


def write(tmp_path, **soft):
    path = tmp_path / "d.safetensors"
    tensors = {"images": torch.zeros(N, 3, 8, 8, dtype=torch.uint8), "labels": torch.arange(N) % C, **soft}
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return open_tensor_file(path)


def distributions(seed=0):
    return torch.softmax(torch.randn(N, C, generator=torch.Generator().manual_seed(seed)), dim=1)


def test_full_distributions_are_read_as_given(tmp_path):
    probs = distributions()
    tf = write(tmp_path, soft_labels=probs)
    assert torch.allclose(load_soft_labels(tf, N, C, 1e-3), probs)
    assert stored_bytes(tf, ("soft_labels",)) == N * C * 4


def test_top_k_spreads_the_rest_evenly_over_the_other_classes(tmp_path):
    values = torch.tensor([[0.5, 0.3]] * N)
    indices = torch.tensor([[2, 0]] * N)
    tf = write(tmp_path, soft_values=values, soft_indices=indices)
    probs = load_soft_labels(tf, N, C, 1e-3)
    assert torch.allclose(probs[0], torch.tensor([0.3, 0.1, 0.5, 0.1]))
    assert torch.allclose(probs.sum(1), torch.ones(N))
    assert stored_bytes(tf, ("soft_values", "soft_indices")) == N * 2 * (4 + 8)


@pytest.mark.parametrize("soft, needle", [
    ({"soft_labels": torch.full((N, C + 1), 1 / (C + 1))}, "'soft_labels' has shape (6, 5); expected (6, 4)"),
    ({"soft_labels": torch.full((N - 1, C), 1 / C)}, "has shape (5, 4); expected (6, 4)"),
    ({"soft_labels": torch.tensor([[1.5, -0.5, 0.0, 0.0]] * N)}, "negative values"),
    ({"soft_labels": torch.full((N, C), 0.3)}, "row 0 sums to 1.2; every row must sum to 1"),
    ({"soft_labels": torch.full((N, C), float("nan"))}, "contains 24 NaN or infinite values"),
    ({"soft_labels": torch.ones(N, C, dtype=torch.int64)}, "dtype torch.int64; expected floating-point"),
    ({"soft_values": torch.full((N, 2), 0.2)}, "found ['soft_values']"),
    ({"soft_values": torch.full((N, 2), 0.2), "soft_indices": torch.tensor([[1, 1]] * N)}, "row 0 names a class twice"),
    ({"soft_values": torch.full((N, 2), 0.2), "soft_indices": torch.tensor([[0, 4]] * N)}, "holds 0..4; expected class indices 0..3"),
    ({"soft_values": torch.full((N, 2), 0.7), "soft_indices": torch.tensor([[0, 1]] * N)}, "sums to 1.4, more than 1"),
    ({"soft_values": torch.full((N, 2), 0.2), "soft_indices": torch.tensor([[0, 1, 2]] * N)}, "must have the same shape"),
    ({"soft_labels": distributions(), "soft_values": torch.full((N, 1), 0.5)}, "store one of the two"),
])
def test_malformed_soft_labels_are_refused_in_one_line(tmp_path, soft, needle):
    tf = write(tmp_path, **soft)
    with pytest.raises(ImageFileError) as exc:
        load_soft_labels(tf, N, C, 1e-3)
    message = str(exc.value)
    assert needle in message and "\n" not in message and str(tf.path) in message


def test_the_objective_with_one_hot_targets_is_cross_entropy():
    logits, y = torch.randn(5, C), torch.tensor([0, 1, 2, 3, 0])
    assert torch.allclose(distillation_loss(logits, F.one_hot(y, C).float(), 1.0), F.cross_entropy(logits, y))
    # at temperature T: T^2 x KL(p || softmax(z / T)); zero where the student matches the target
    p = torch.softmax(logits / 4, dim=1)
    assert distillation_loss(logits, p, 4.0).abs() < 1e-6
    q = torch.softmax(torch.randn(5, C), dim=1)
    kl = (q * (q.log() - torch.log_softmax(logits / 2, dim=1))).sum(1).mean()
    assert torch.allclose(distillation_loss(logits, q, 2.0), 4 * kl)  # T^2 x KL at T = 2


def test_stored_one_hot_targets_train_exactly_as_hard_labels():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(20, 3, 8, 8, generator=g), torch.arange(20) % 5
    cfg = train_config(3, compile=False)

    def weights(soft):
        out = []
        train_and_test(Task(x, y, x, y, 5, soft), cfg, seed=0, keep=lambda m: out.append(
            torch.cat([v.flatten().clone() for v in m.state_dict().values()])))
        return out[0]

    hard = weights(None)
    assert torch.equal(weights(SoftTargets(1.0, targets=F.one_hot(y, 5).float())), hard)
    assert not torch.allclose(weights(SoftTargets(1.0, targets=torch.full((20, 5), 0.2))), hard)  # targets are used


def test_an_online_teacher_labels_the_batches():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(20, 3, 8, 8, generator=g), torch.arange(20) % 5

    class Says(torch.nn.Module):  # a teacher that always names class 3, whatever the label
        def forward(self, inp):
            return torch.nn.functional.one_hot(torch.full((len(inp),), 3), 5).float() * 50

    r = train_and_test(Task(x, y, x, y, 5, SoftTargets(1.0, teacher=Says())), train_config(20, compile=False), seed=0)
    assert r.per_class[3] == 100.0 and r.accuracy == 20.0  # it learnt the teacher's answer, not the labels


def test_soft_targets_need_exactly_one_source():
    with pytest.raises(ValueError):
        SoftTargets(1.0)
    with pytest.raises(ValueError):
        SoftTargets(0.0, targets=torch.ones(1, 2) / 2)


def test_forward_flops_of_the_convnet_at_8_px():
    # 2 x multiply-adds of its three 3x3 convolutions (8x8, 4x4, 2x2 maps) and of the classifier
    expected = 2 * (3 * 9 * 128 * 64 + 128 * 9 * 128 * 16 + 128 * 9 * 128 * 4 + 128 * 10)
    assert forward_flops(archs.build("convnet", 10, 8), 8) == expected == conv_flops_per_image(8, 10)  # the perf count


def test_a_top_k_below_the_protocol_minimum_is_refused(tmp_path):
    tf = write(tmp_path, soft_values=torch.full((N, 1), 0.7), soft_indices=torch.zeros(N, 1, dtype=torch.int64))
    assert load_soft_labels(tf, N, C, 1e-3, min_k=1).shape == (N, C)
    with pytest.raises(ImageFileError, match=r"k from 2 to 4"):
        load_soft_labels(tf, N, C, 1e-3, min_k=2)
