"""Show all options of a scheduler's Pool in its signature, without repeating them.

A scheduler's Pool takes its own options as keyword parameters and passes
the others (``work_dir``, ``polling_interval``, ...) on to its base classes
through ``**options``, down to :class:`pypoolparty.pool.Pool`. Python would
show only ``**options`` in ``help()`` and :func:`inspect.signature`;
:func:`with_inherited_options` gives the class a ``__signature__`` that lists
them all, so that ``help()`` shows them and editors complete them.
"""

from __future__ import annotations

import inspect
from typing import TypeVar

PoolClass = TypeVar("PoolClass", bound=type)


def with_inherited_options(cls: PoolClass) -> PoolClass:
    """Set ``cls.__signature__`` to its own parameters, then its bases' keyword-only ones.

    The class's own parameters keep their order and defaults (also where it
    overrides an inherited option's default); the keyword-only parameters of
    each base's ``__init__`` follow, nearest base first, each name once.
    ``**options`` disappears, as every name it passes on is listed. Apply it
    to each Pool class, not only to a base: subclasses inherit
    ``__signature__``.

    Parameters
    ----------
    cls : type
        A Pool class whose ``__init__`` passes ``**options`` on to its base.

    Returns
    -------
    type
        ``cls`` itself.
    """
    own = inspect.signature(cls.__init__)
    parameters = [p for p in own.parameters.values() if p.name != "self"]
    for base in cls.__mro__[1:]:
        if "__init__" in vars(base) and base is not object:
            inherited = inspect.signature(base.__init__).parameters.values()
            parameters += [p for p in inherited if p.kind is inspect.Parameter.KEYWORD_ONLY]
    unique = {}
    for parameter in parameters:
        if parameter.kind is not inspect.Parameter.VAR_KEYWORD:
            unique.setdefault(parameter.name, parameter)
    cls.__signature__ = own.replace(
        parameters=list(unique.values()), return_annotation=inspect.Signature.empty
    )
    return cls
