"""How a launch over several processes splits the runs (accelerate's split, no launch)."""
import pytest
from conftest import FakeState

from benchmark import distributed


@pytest.mark.parametrize("world", [1, 2, 3, 5, 8])
def test_the_split_loses_and_doubles_nothing(world):
    for n in range(0, 23):
        items = [(i, s) for i in range(n) for s in range(1)]
        shares = [distributed.Workers(FakeState(r, world)).split(items) for r in range(world)]
        assert sorted(x for share in shares for x in share) == items  # each exactly once
        assert max(map(len, shares)) - min(map(len, shares)) <= 1  # balanced


