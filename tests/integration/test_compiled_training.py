"""torch.compile really compiles (a C++ compiler runs) and the compiled network learns."""
from conftest import digits_ipc, train_config

from evaluator import train as tr
from evaluator.train import Task, train_and_test


def test_compiled_training_really_compiles_and_learns():
    from torch._dynamo.utils import counters

    ds, x, y = digits_ipc()
    task = Task(x, y, ds.normalize(ds.test_images), ds.test_labels, 10)
    before = counters["stats"]["unique_graphs"]
    r = train_and_test(task, train_config(100, compile=True), seed=0)
    net = tr._Network.get(10, 8, train_config(100, compile=True), compiled=True)
    assert type(net.forward).__name__ == "OptimizedModule"
    assert counters["stats"]["unique_graphs"] > before  # dynamo captured the network's graph
    assert r.accuracy > 70 and r.passes == 101
