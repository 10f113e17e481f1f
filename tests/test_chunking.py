import pytest

from pypoolparty import chunking


def test_default_chunksize_keeps_four_chunks_per_slot():
    assert chunking.default_chunksize(1000, parallelism=2) == 125
    assert chunking.default_chunksize(10_000, parallelism=2) == 1250


def test_default_chunksize_never_makes_empty_chunks():
    assert chunking.default_chunksize(3, parallelism=2) == 1
    assert chunking.default_chunksize(1, parallelism=100) == 1


def test_unknown_parallelism_falls_back_to_a_fixed_number_of_slots():
    expected_chunks = chunking.CHUNKS_PER_SLOT * chunking.FALLBACK_PARALLELISM
    chunksize = chunking.default_chunksize(100_000, parallelism=None)
    assert len(chunking.chunk_bounds(100_000, chunksize)) <= expected_chunks


def test_chunk_bounds_cover_every_task_once_in_order():
    bounds = chunking.chunk_bounds(10, 3)
    assert bounds == [(0, 3), (3, 6), (6, 9), (9, 10)]
    covered = [i for start, stop in bounds for i in range(start, stop)]
    assert covered == list(range(10))


@pytest.mark.parametrize(
    "num_tasks, parallelism", [(1, 1), (10, 2), (100, 2), (1000, 2), (100_000, 256), (7, None)]
)
def test_guided_chunks_cover_every_task_once_in_order_and_shrink(num_tasks, parallelism):
    bounds = chunking.guided_bounds(num_tasks, parallelism)
    assert bounds[0][0] == 0 and bounds[-1][1] == num_tasks
    assert all(stop == next_start for (_, stop), (next_start, _) in zip(bounds, bounds[1:]))
    sizes = [stop - start for start, stop in bounds]
    assert min(sizes) >= 1
    # Non-increasing, but for the last chunk, which holds what is left.
    assert sizes[:-1] == sorted(sizes[:-1], reverse=True)


def test_guided_chunks_start_small_enough_for_long_tasks_first():
    # 10 tasks of 3 s then 90 of 0.2 s on 2 slots: the first chunk holds less
    # than the ideal 24 s of one slot (issue 12's skewed benchmark).
    first_start, first_stop = chunking.guided_bounds(100, 2)[0]
    assert (first_stop - first_start) * 3 < 24


def test_guided_chunks_are_bounded_in_number():
    assert len(chunking.guided_bounds(1_000_000, 2)) < 100
    assert len(chunking.guided_bounds(100_000, 256)) < 8 * 256 * 4
