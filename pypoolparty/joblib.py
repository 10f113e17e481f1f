"""A joblib backend: ``joblib.Parallel`` (and scikit-learn's ``n_jobs``) on any pool.

::

    import joblib
    import pypoolparty
    import pypoolparty.joblib

    pypoolparty.joblib.register()
    pool = pypoolparty.slurm.array.Pool(work_dir="/shared/me/ppp")
    with joblib.parallel_config(backend="pypoolparty", pool=pool):
        results = joblib.Parallel(n_jobs=-1)(joblib.delayed(f)(x) for x in xs)

The pool may also be given as a kind and options, e.g.
``parallel_config(backend="pypoolparty", pool="slurm.array", partition="short")``;
that form is needed for ``max_recursion_level`` (a job rebuilds the pool).

How joblib's dispatching meets the pool
---------------------------------------
joblib hands a backend one *batch* of calls at a time and, by default, only
``pre_dispatch`` batches ahead, sizing batches by how long the last ones
took. That is timing-dependent, but a map continues after an interruption
only if it is called again with the same function and the same tasks. So:

- joblib's auto-batching is replaced by ours: :meth:`compute_batch_size`
  is 1, each of joblib's batches is one task of a map, and the map's
  chunking puts many tasks into one job. An integer ``batch_size`` given to
  ``Parallel`` is respected (its batches are tasks).
- ``pre_dispatch`` is set to ``"all"`` at the start of each call: the whole
  input is read at once, as ``Pool.map`` does, and grouped by position into
  maps of ``calls_per_map`` tasks -- the same groups, hence the same maps,
  every time the same call runs. A full group is submitted at once; the last
  one when joblib starts collecting results.
- The chunk size of a map depends only on its number of tasks and the
  call's resolved ``n_jobs``.

``n_jobs`` is the limit on simultaneously running tasks of the call's maps:
a positive value is taken as is (but not above the pool's own
``num_simultaneously_running_tasks``); ``-1`` means the pool's
``num_simultaneously_running_tasks``, or, if it has none, the scheduler's
number of CPUs (``-2`` one less, and so on). As with every joblib backend a
value that resolves to 1 runs the calls one after the other in this process.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from typing import Any

import joblib
from joblib.parallel import (
    FallbackToBackend,
    ParallelBackendBase,
    SequentialBackend,
    ThreadingBackend,
)

from . import call_group, chunking
from .call_group import CallFuture
from .checks import whole_number
from .imap import DEFAULT_READ_AHEAD

BACKEND_NAME = "pypoolparty"
POOL_KINDS = ("local", "slurm.array", "slurm", "sun_grid_engine", "sge", "htcondor")


def register(name: str = BACKEND_NAME) -> None:
    """Make the backend known to joblib as ``name`` (``"pypoolparty"``)."""
    joblib.register_parallel_backend(name, PoolBackend)


class PoolBackend(ParallelBackendBase):
    """joblib backend whose workers are the jobs of a pypoolparty pool.

    Parameters
    ----------
    pool : pypoolparty.pool.Pool or str
        The pool, or its kind -- ``"local"``, ``"slurm.array"``, ``"slurm"``,
        ``"sun_grid_engine"``, ``"htcondor"`` -- with ``pool_options``.
    max_recursion_level : int
        How many levels of nested ``Parallel`` calls inside the tasks also
        run on the cluster. 0 (default): a nested call runs in its job, on
        joblib's thread backend. With 1, a task's own ``Parallel`` submits
        jobs of its own; the tasks of every level that may start jobs are
        then held to half of that level's limit (at least 1), and the
        other half is the nested level's limit, so that parents waiting
        for their children never fill every slot. Needs ``pool`` as a kind.
    calls_per_map : int
        Tasks (joblib batches) per map; a call with more input runs several
        maps side by side.
    **pool_options
        Options of the pool's constructor, when ``pool`` is a kind.

    Raises
    ------
    ValueError
        For an unknown pool kind, options beside a pool instance, or
        ``max_recursion_level`` > 0 with a pool instance.
    """

    default_n_jobs = -1
    supports_retrieve_callback = True
    supports_return_generator = True
    supports_timeout = True
    supports_sharedmem = False
    uses_threads = False

    def __init__(
        self,
        pool: Any = "local",
        *,
        max_recursion_level: int = 0,
        calls_per_map: int = DEFAULT_READ_AHEAD,
        nesting_level: int | None = None,
        inner_max_num_threads: int | None = None,
        **pool_options: Any,
    ) -> None:
        super().__init__(nesting_level=nesting_level, inner_max_num_threads=inner_max_num_threads)
        self.max_recursion_level = whole_number(
            "max_recursion_level", max_recursion_level, minimum=0
        )
        self.calls_per_map = whole_number("calls_per_map", calls_per_map, minimum=1)
        if isinstance(pool, str):
            if pool not in POOL_KINDS:
                raise ValueError(f"pool must be a Pool or one of {POOL_KINDS}, not {pool!r}")
            self.pool_kind, self.pool_options, self._pool = pool, dict(pool_options), None
        else:
            if pool_options:
                raise ValueError(
                    f"options {sorted(pool_options)} go to the pool's constructor; pass them "
                    "there, or pass the pool as a kind name"
                )
            if self.max_recursion_level > 0:
                raise ValueError(
                    "max_recursion_level > 0 needs the pool as a kind and options (e.g. "
                    "pool='slurm.array', partition='short'), which a job can rebuild"
                )
            self.pool_kind, self.pool_options, self._pool = None, {}, pool
        self._capacity: int | None = None
        self._reset_call()

    # -- joblib's interface ---------------------------------------------------

    def effective_n_jobs(self, n_jobs: int | None) -> int:
        """The call's limit on simultaneously running tasks (see the module)."""
        if n_jobs == 0:
            raise ValueError("n_jobs == 0 in Parallel has no meaning")
        if n_jobs is None:
            n_jobs = self.default_n_jobs
        capacity = self._pool_capacity()
        if n_jobs > 0:
            return min(n_jobs, capacity) if self.pool.num_simultaneously_running_tasks else n_jobs
        return max(capacity + 1 + n_jobs, 1)

    def configure(self, n_jobs=1, parallel=None, prefer=None, require=None, **kwargs) -> int:
        """Prepare one ``Parallel`` call; return its resolved ``n_jobs``."""
        n_jobs = self.effective_n_jobs(n_jobs)
        if n_jobs == 1:
            raise FallbackToBackend(SequentialBackend(nesting_level=self.nesting_level))
        self._reset_call()
        self.parallel = parallel
        self._limit = self._parent_limit(n_jobs) if self._has_cluster_children() else n_jobs
        self._nested_limit = n_jobs - self._limit
        self._call_pool = call_group.derived_pool(self.pool, self._limit)
        return n_jobs

    def start_call(self) -> None:
        # Read all input at once, so that its grouping into maps never
        # depends on how fast results come back (see the module).
        if self.parallel is not None:
            self.parallel.pre_dispatch = "all"

    def compute_batch_size(self) -> int:
        return 1

    def submit(self, func, callback=None) -> CallFuture:
        future = CallFuture()
        if callback is not None:
            future.add_done_callback(callback)
        with self._lock:
            self._group.append((future, func))
            if len(self._group) >= self.calls_per_map or self._retrieving:
                self._send_group()
        return future

    def retrieve_result_callback(self, future: CallFuture) -> Any:
        return future.result()

    @contextlib.contextmanager
    def retrieval_context(self):
        with self._lock:
            self._retrieving = True
            self._send_group()
        yield

    def abort_everything(self, ensure_ready: bool = True) -> None:
        """Cancel every job of the current call; its work_dir is kept, so
        running the same call again continues it."""
        with self._lock:
            self._group = []
            pool = self._call_pool
        if pool is not None:
            pool._background.terminate()
        if ensure_ready and self.parallel is not None:
            self.configure(n_jobs=self.parallel.n_jobs, parallel=self.parallel)

    def terminate(self) -> None:
        with self._lock:
            self._group = []
            self._call_pool = None

    def get_nested_backend(self):
        level = (self.nesting_level or 0) + 1
        if not self._has_cluster_children():
            return (ThreadingBackend if level == 1 else SequentialBackend)(
                nesting_level=level
            ), None
        options = dict(self.pool_options, num_simultaneously_running_tasks=self._nested_limit)
        nested = PoolBackend(
            self.pool_kind,
            max_recursion_level=self.max_recursion_level,
            calls_per_map=self.calls_per_map,
            nesting_level=level,
            **options,
        )
        return nested, None

    def __reduce__(self):
        # A nested backend travels inside every task: only its settings.
        if self.pool_kind is None:
            raise TypeError("a PoolBackend made from a pool instance cannot travel to a job")
        return (_rebuild, (self.pool_kind, self.pool_options, self._settings()))

    # -- helpers ------------------------------------------------------------

    @property
    def pool(self):
        """The pool, built from its kind and options on first use."""
        if self._pool is None:
            module = importlib.import_module(f"pypoolparty.{self.pool_kind}")
            self._pool = module.Pool(**self.pool_options)
            # The backend owns this pool and nobody can close it: no
            # ResourceWarning when the backend is dropped.
            self._pool._warn_if_unclosed = False
        return self._pool

    def _settings(self) -> dict:
        return {
            "max_recursion_level": self.max_recursion_level,
            "calls_per_map": self.calls_per_map,
            "nesting_level": self.nesting_level,
        }

    def _reset_call(self) -> None:
        self._lock = threading.RLock()
        self._group: list = []
        self._retrieving = False
        self._call_pool = None
        self._limit = self._nested_limit = None
        self.parallel = None

    def _has_cluster_children(self) -> bool:
        return (self.nesting_level or 0) < self.max_recursion_level

    @staticmethod
    def _parent_limit(n_jobs: int) -> int:
        return max(1, n_jobs // 2)

    def _pool_capacity(self) -> int:
        """The pool's limit, else the scheduler's CPUs, else a fallback."""
        if self.pool.num_simultaneously_running_tasks:
            return self.pool.num_simultaneously_running_tasks
        if self._capacity is None:
            try:
                capacity = self.pool._make_scheduler().capacity()
            except Exception:  # only a default
                capacity = None
            self._capacity = capacity or chunking.FALLBACK_PARALLELISM
        return self._capacity

    def _send_group(self) -> None:
        group, self._group = self._group, []
        if not group or self._call_pool is None:
            return
        calls = [call for _, call in group]
        chunksize = chunking.default_chunksize(len(calls), self._limit)
        call_group.start(self._call_pool, calls, [f for f, _ in group], chunksize)


def _rebuild(pool_kind: str, pool_options: dict, settings: dict) -> PoolBackend:
    return PoolBackend(pool_kind, **settings, **pool_options)
