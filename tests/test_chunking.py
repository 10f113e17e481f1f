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
