"""How the bulk writer cuts a batch for its threads (pure)."""

from __future__ import annotations

import pytest

from xlidx.indices.writer import slice_bounds


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, []),
        (10, [(0, 10)]),
        (700, [(0, 500), (500, 700)]),
        (3000, [(0, 1000), (1000, 2000), (2000, 2500), (2500, 3000)]),
        (2001, [(0, 1000), (1000, 1500), (1500, 2000), (2000, 2001)]),
    ],
)
def test_slices_are_whole_requests(n: int, expected: list[tuple[int, int]]) -> None:
    bounds = slice_bounds(n, 500, 4)
    assert bounds == expected
    # contiguous, covering every action once, never more requests than one thread sends
    assert [a for a, _ in bounds[1:]] == [b for _, b in bounds[:-1]]
    assert sum(-(-(b - a) // 500) for a, b in bounds) == -(-n // 500)


def test_one_thread_is_one_slice() -> None:
    assert slice_bounds(5000, 500, 1) == [(0, 5000)]
