"""The training protocol: pass count, schedule, momentum reset, batches, seeding, accuracy."""
import statistics

import pytest
import torch
from conftest import digits_ipc, train_config

from evaluator import train as tr
from evaluator.evaluate import evaluate
from evaluator.train import Task, learning_rate, train_and_test


def test_pass_count_and_decay_pass_follow_the_official_loop():
    cfg = train_config(1000)
    assert cfg.passes == 1001 and cfg.decay_pass == 501
    assert train_config(20).decay_pass == 11 and train_config(20).passes == 21


def test_learning_rate_drops_tenfold_after_the_decay_pass():
    cfg = train_config(1000)
    assert [learning_rate(p, cfg) for p in (0, 250, 501)] == [0.01] * 3
    assert learning_rate(502, cfg) == pytest.approx(0.001) and learning_rate(1000, cfg) == pytest.approx(0.001)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="precision"):
        train_config(1, precision="fp8")
    with pytest.raises(ValueError, match="epochs"):
        train_config(-1)


def toy(n=300, classes=5, res=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, res, res, generator=g), torch.arange(n) % classes


def test_loop_runs_e_plus_one_passes_keeps_last_partial_batch_and_resets_momentum(monkeypatch):
    x, y = toy()
    cfg = train_config(4, compile=False)
    created, batch_sizes, passes = [], [], []
    real = tr.make_optimizer

    def spy(model, lr, cfg_):
        opt = real(model, lr, cfg_)
        created.append((lr, opt))
        return opt

    monkeypatch.setattr(tr, "make_optimizer", spy)
    net = tr._Network.get(5, 8, cfg, compiled=False)
    hook = net.module.register_forward_pre_hook(lambda m, inp: batch_sizes.append(inp[0].shape[0]))
    try:
        result = train_and_test(Task(x, y, x, y, 5), cfg, seed=0, on_pass=lambda p, total: passes.append((p, total)))
    finally:
        hook.remove()
    assert passes == [(p, 5) for p in range(1, 6)] and result.passes == 5
    assert batch_sizes == [256, 44] * 5 + [300]  # every pass: a full and the partial batch; then the test
    # decay after pass E//2+1 = 3: a brand-new optimizer with lr/10, whose momentum starts at zero
    assert [lr for lr, _ in created] == [0.01, pytest.approx(0.001)]
    first, second = created[0][1], created[1][1]
    assert first is not second
    buf_first = first.state[next(iter(first.param_groups[0]["params"]))]["momentum_buffer"]
    buf_second = second.state[next(iter(second.param_groups[0]["params"]))]["momentum_buffer"]
    assert not torch.equal(buf_first, buf_second)


def test_same_seed_same_result_different_seed_different():
    x, y = toy()
    cfg = train_config(3, compile=False)
    task = Task(x, y, x, y, 5)
    a = train_and_test(task, cfg, seed=7)
    b = train_and_test(task, cfg, seed=7)
    c = train_and_test(task, cfg, seed=8)
    assert a.accuracy == b.accuracy and a.per_class == b.per_class
    assert (a.accuracy, a.per_class) != (c.accuracy, c.per_class)


def test_per_class_accuracy_is_reported_in_class_order():
    x, y = toy(n=100, classes=4)
    r = train_and_test(Task(x, y, x, y, 4), train_config(1, compile=False), seed=0)
    assert len(r.per_class) == 4 and all(0 <= a <= 100 for a in r.per_class)
    assert r.accuracy == pytest.approx(sum(r.per_class) / 4)  # balanced test set

    class Always2(torch.nn.Module):  # a network whose every answer is class 2
        def forward(self, xb):
            return torch.nn.functional.one_hot(torch.full((len(xb),), 2), 4).float()

    accuracy, per_class = tr.test(Always2(), Task(x, y, x, y, 4), train_config(1, compile=False))
    assert per_class == (0.0, 0.0, 100.0, 0.0) and accuracy == 25.0


def test_short_training_on_digits_is_far_above_chance_and_resumable():
    ds, x, y = digits_ipc()
    tx, ty = ds.normalize(ds.test_images), ds.test_labels
    cfg = train_config(60, compile=False)
    finished = []
    task = Task(x, y, tx, ty, 10)
    ev = evaluate(task, cfg, [0, 1], on_run=finished.append)
    assert ev.mean > 60, ev.accuracies  # chance is 10 %
    assert [r.seed for r in ev.runs] == [0, 1] and len(finished) == 2
    again = evaluate(task, cfg, [0, 1], done={0: finished[0], 1: finished[1]},
                     on_run=lambda r: pytest.fail("a finished run was trained again"))
    assert again.accuracies == ev.accuracies
    assert ev.std == pytest.approx(statistics.stdev(ev.accuracies))
    assert ev.class_spread == pytest.approx(statistics.pstdev(ev.per_class_mean))


@pytest.mark.parametrize("precision,dtype", [("bf16", torch.bfloat16), ("fp32", torch.float32)])
def test_precision_decides_the_dtype_of_the_forward_pass(precision, dtype):
    x, y = toy(n=64)
    cfg = train_config(1, precision=precision, compile=False)
    seen = set()
    net = tr._Network.get(5, 8, cfg, compiled=False)
    hook = net.module.register_forward_hook(lambda m, inp, out: seen.add(out.dtype))
    try:
        r = train_and_test(Task(x, y, x, y, 5), cfg, seed=0)
    finally:
        hook.remove()
    assert seen == {dtype} and 0 <= r.accuracy <= 100


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_run_is_seeded_and_learns():
    ds, x, y = digits_ipc()
    cfg = train_config(50, device="cuda")
    task = Task(x, y, ds.normalize(ds.test_images), ds.test_labels, 10)
    a = train_and_test(task, cfg, seed=3)
    b = train_and_test(task, cfg, seed=3)
    assert a.accuracy > 60 and a.accuracy == b.accuracy
