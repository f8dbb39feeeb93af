import pytest

from benchmark.protocol import load_protocol
from evaluator.ipc_epochs import IpcEpochTable


def test_table_rows_are_used_as_they_are():
    table = load_protocol().ipc_epochs
    assert [table.epochs(i) for i in (10, 50, 100, 500)] == [1000, 200, 100, 20]


@pytest.mark.parametrize("ipc,epochs", [(1, 1000), (3, 1000), (20, 500), (37, 270), (64, 156), (1000, 10),
                                        (20000, 1)])
def test_constant_image_steps_between_and_beyond_rows_with_the_cap(ipc, epochs):
    assert load_protocol().ipc_epochs.epochs(ipc) == epochs


def test_rule_uses_the_product_of_the_row_below():
    table = IpcEpochTable(rows=((10, 100), (100, 50)), cap=500)
    assert table.epochs(20) == 50  # 10 x 100 = 1,000 image-steps
    assert table.epochs(200) == 25  # 100 x 50 = 5,000
    assert table.epochs(5) == 200  # below the table: the first row's product
    assert table.epochs(1) == 500  # capped


def test_invalid_tables_are_rejected():
    with pytest.raises(ValueError):
        IpcEpochTable(rows=((50, 200), (10, 1000)), cap=1000)
    with pytest.raises(ValueError):
        IpcEpochTable(rows=(), cap=1000)
    with pytest.raises(ValueError):
        load_protocol().ipc_epochs.epochs(0)
