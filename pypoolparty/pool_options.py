"""The options every Pool takes, typed for static checkers and editors (PEP 692).

A scheduler's Pool names its own options as parameters and passes the common
ones on to :class:`pypoolparty.pool.Pool` through ``**options``. At run time
:func:`pypoolparty.signatures.with_inherited_options` shows them all to
``help()`` and :func:`inspect.signature`; a static checker or an editor
(mypy, Pylance, Pyright, jedi without running the code) reads only the source,
where ``**options: Any`` would accept any name. So each Pool annotates
``**options: Unpack[PoolOptions]``: the checker then completes these names,
reports a typo, and checks the values' types.

Keep these in step with :class:`pypoolparty.pool.Pool`'s keyword-only
parameters (names and annotations); ``tests/test_pool_signatures.py`` compares
them. The aliases of :data:`pypoolparty.signatures.GUESSES` (``processes``,
...) are accepted at run time only: a checker points to the option's own name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    from .container import Container


class PoolOptionsButGracePeriod(TypedDict, total=False):
    """The keyword options of :class:`pypoolparty.pool.Pool` but
    ``missing_result_grace_period``, which the local pool names itself (with
    its own default): a name may not be both a parameter and a key of the
    ``**options`` it unpacks."""

    python_path: str | None
    polling_interval: float | None
    work_dir: str | os.PathLike | None
    keep_work_dir: bool
    reuse_results: bool
    verbose: bool
    max_num_resubmissions: int
    command_timeout: float
    outage_timeout: float
    environment: str | list[str]
    setup: Sequence[str]
    job_name_prefix: str
    max_result_size: int | None
    pending_warning_after: float
    pending_timeout: float | None
    container: Container | None
    tasks_per_job: int


class PoolOptions(PoolOptionsButGracePeriod, total=False):
    """The keyword options of :class:`pypoolparty.pool.Pool`, which every
    scheduler's Pool passes on (see the parameters there)."""

    missing_result_grace_period: float
