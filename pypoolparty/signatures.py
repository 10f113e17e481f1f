"""Show every option of a scheduler's Pool, and answer a wrong option name helpfully.

A scheduler's Pool takes its own options as keyword parameters and passes
the others (``work_dir``, ``polling_interval``, ...) on to its base classes
through ``**options``, down to :class:`pypoolparty.pool.Pool`. Python would
show only ``**options`` in ``help()`` and :func:`inspect.signature`, and
answer a typo with a bare ``TypeError`` naming ``Pool.__init__``.
:func:`with_inherited_options` gives the class a ``__signature__`` and a
numpydoc ``Parameters`` section that list them all, so that ``help()`` shows
them and editors complete them, and checks the names of the options before
the Pool is made: a typo is answered with the near miss, and the names other
tools use (:data:`GUESSES`) with the option to use here.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, Union

from .errors import UnknownOption

PoolClass = TypeVar("PoolClass", bound=type)

SCHEDULERS = ("local", "slurm", "sge", "htcondor")


@dataclasses.dataclass(frozen=True)
class Alias:
    """A name that is accepted: it means exactly ``option``, with the same values."""

    option: str


Advice = Union[Alias, str]
"""What a guessed name gets: accepted as an :class:`Alias`, or refused with
this text, which says what to write instead."""


@dataclasses.dataclass(frozen=True)
class Guess:
    """An option name that is not ours, and what each pool makes of it."""

    whose: str
    """Whose name it is and what it means there, e.g. ``"multiprocessing's
    number of worker processes"``."""

    advice: Advice | Mapping[str, Advice]
    """The same for every pool, or per scheduler (:data:`SCHEDULERS`); a
    scheduler missing from the mapping gets the plain unknown-option error."""

    def advice_for(self, scheduler: str) -> Advice | None:
        if isinstance(self.advice, Mapping):
            return self.advice.get(scheduler)
        return self.advice


# How each scheduler's pool asks for what other tools name differently.
_LOCAL = "the local pool runs its jobs as processes on this machine; there is no scheduler to ask"
_QUEUE = {
    "local": _LOCAL,
    "slurm": "pass partition='NAME'",
    "sge": "pass queue_name='NAME', e.g. 'all.q'",
    "htcondor": "HTCondor has no queues; choose machines with "
    "submit_directives={'requirements': '...'}",
}
_TIME_LIMIT = {
    "local": _LOCAL,
    "slurm": "pass time=MINUTES or time='H:MM:SS' (also 'D-HH')",
    "sge": "pass resources={'h_rt': 'H:MM:SS'}",
    "htcondor": "HTCondor pools take no time limit of their own; a site's policy goes in "
    "submit_directives",
}
_MEMORY = {
    "local": _LOCAL,
    "slurm": "pass mem=MEGABYTES or mem='4G' (per job)",
    "sge": "pass resources={'h_vmem': '4G'} (or the memory resource your site uses)",
    "htcondor": "pass request_memory=MEGABYTES or request_memory='4GB'",
}
_CPUS = {
    "local": _LOCAL,
    "slurm": "pass cpus_per_task=N",
    "sge": "pass parallel_environment='NAME', slots=N",
    "htcondor": "pass request_cpus=N",
}
_GPUS = {
    "local": _LOCAL,
    "slurm": "pass gpus=N or gpus='TYPE:N'",
    "sge": "pass resources={'gpu': N} (or the GPU resource your site uses)",
    "htcondor": "pass request_gpus=N",
}
_ACCOUNT = {
    "local": _LOCAL,
    "slurm": "pass account='NAME'",
    "sge": "pass qsub_arguments=['-P', 'NAME'] (Grid Engine's project)",
    "htcondor": "pass submit_directives={'+ProjectName': '\"NAME\"'}",
}
_EXTRA = {
    "local": _LOCAL,
    "slurm": "pass sbatch_arguments=['--option=value', ...]",
    "sge": "pass qsub_arguments=['-option', 'value', ...]",
    "htcondor": "pass submit_directives={'command': 'value', ...}",
}
_THROTTLE = (
    "pass num_simultaneously_running_tasks=N (the first positional argument, "
    "as multiprocessing's processes)"
)
_SETUP = (
    "not supported: each job is a new process, maybe on another machine; call the "
    "setup at the start of the task function (shell commands such as module load or "
    "source venv/bin/activate go in setup=[...])"
)
_CONTAINER = (
    "pass container=pypoolparty.Container(IMAGE, RUNTIME), the RUNTIME one of "
    "'apptainer', 'singularity', 'podman', 'docker', 'charliecloud'"
)

GUESSES: dict[str, Guess] = {
    # multiprocessing.Pool(processes, initializer, initargs, maxtasksperchild, context).
    # processes bounds how many tasks run at once, as our first argument does
    # (Pool(4) already means the same in both), hence accepted.
    "processes": Guess(
        "multiprocessing's number of worker processes", Alias("num_simultaneously_running_tasks")
    ),
    "initializer": Guess("multiprocessing's per-worker setup", _SETUP),
    "initargs": Guess("multiprocessing's arguments of the per-worker setup", _SETUP),
    "maxtasksperchild": Guess(
        "multiprocessing's tasks per worker process",
        "not needed: every job is a new process that runs one chunk of tasks and ends; "
        "bound the tasks per job with the chunksize of map",
    ),
    "context": Guess(
        "multiprocessing's start method",
        "not supported: the scheduler starts the jobs' processes",
    ),
    # Grid Engine calls its queues queues (qsub -q), so there it is the same
    # option; dask-jobqueue uses it for SLURM's partition too.
    "queue": Guess("dask-jobqueue's queue", {**_QUEUE, "sge": Alias("queue_name")}),
    "partition": Guess("SLURM's queue", _QUEUE),
    "queue_name": Guess("Grid Engine's queue", _QUEUE),
    "slurm_partition": Guess("submitit's SLURM partition", _QUEUE),
    "time": Guess("SLURM's time limit", _TIME_LIMIT),
    "walltime": Guess("dask-jobqueue's time limit", _TIME_LIMIT),
    "timeout_min": Guess("submitit's time limit in minutes", _TIME_LIMIT),
    "slurm_time": Guess("submitit's SLURM time limit", _TIME_LIMIT),
    "mem": Guess("SLURM's memory per job", _MEMORY),
    "memory": Guess("dask-jobqueue's memory per job", _MEMORY),
    "mem_gb": Guess("submitit's memory per job in GB", _MEMORY),
    "slurm_mem": Guess("submitit's SLURM memory", _MEMORY),
    "request_memory": Guess("HTCondor's memory per job", _MEMORY),
    "cores": Guess("dask-jobqueue's cores per job", _CPUS),
    "cpus_per_task": Guess("SLURM's CPUs per job", _CPUS),
    "slurm_cpus_per_task": Guess("submitit's SLURM CPUs per task", _CPUS),
    "request_cpus": Guess("HTCondor's CPUs per job", _CPUS),
    "gpus": Guess("SLURM's GPUs per job", _GPUS),
    "gpus_per_node": Guess("submitit's GPUs per node", _GPUS),
    "request_gpus": Guess("HTCondor's GPUs per job", _GPUS),
    "account": Guess("SLURM's account", _ACCOUNT),
    "project": Guess("dask-jobqueue's project", _ACCOUNT),
    "slurm_account": Guess("submitit's SLURM account", _ACCOUNT),
    "sbatch_arguments": Guess("the SLURM pools' further sbatch options", _EXTRA),
    "qsub_arguments": Guess("the Grid Engine pool's further qsub options", _EXTRA),
    "submit_directives": Guess("the HTCondor pool's further submit commands", _EXTRA),
    "job_extra_directives": Guess("dask-jobqueue's further scheduler options", _EXTRA),
    "slurm_additional_parameters": Guess("submitit's further sbatch options", _EXTRA),
    "slurm_array_parallelism": Guess("submitit's limit of running array tasks", _THROTTLE),
    "max_workers": Guess("concurrent.futures' number of workers", _THROTTLE),
    "n_jobs": Guess("joblib's number of workers", _THROTTLE),
    "folder": Guess(
        "submitit's directory for the jobs' files", "pass work_dir='PATH' (on a shared disk)"
    ),
    "log_directory": Guess(
        "dask-jobqueue's directory for the jobs' logs",
        "pass work_dir='PATH'; the jobs' output is kept in its archives (stdout.zip, stderr.zip)",
    ),
    # Other tools' names for an image to run the jobs in.
    "image": Guess("an image to run the jobs in", _CONTAINER),
    "container_image": Guess("HTCondor's and others' image to run the jobs in", _CONTAINER),
    "singularity_image": Guess("an Apptainer/Singularity image for the jobs", _CONTAINER),
    "apptainer_image": Guess("an Apptainer image for the jobs", _CONTAINER),
    "docker_image": Guess("HTCondor's and HTMap's Docker image for the jobs", _CONTAINER),
    "python": Guess("dask-jobqueue's interpreter of the jobs", "pass python_path='PATH'"),
    "job_script_prologue": Guess(
        "dask-jobqueue's shell lines before the worker starts", Alias("setup")
    ),
    "env_extra": Guess("dask-jobqueue's shell lines before the worker starts", Alias("setup")),
    "env_script": Guess(
        "b2luigi's script sourced before the job", "pass setup=['source PATH/TO/SCRIPT']"
    ),
    "name": Guess("a job name", "pass job_name_prefix='NAME' (each map adds its own suffix)"),
    "job_name": Guess("a job name", "pass job_name_prefix='NAME' (each map adds its own suffix)"),
}
"""Option names people bring from multiprocessing, submitit, dask-jobqueue and
the other schedulers' pools, and what each pool makes of them. Names that are
a pool's own options never get here."""


def with_inherited_options(scheduler: str) -> Callable[[PoolClass], PoolClass]:
    """Show all options of a Pool class and check the names it is given.

    The decorated class gets:

    - ``__signature__``: its own parameters, in order and with its defaults
      (also where it overrides an inherited option's default), then the
      keyword-only parameters of each base's ``__init__``, nearest base
      first, each name once; ``**options`` disappears.
    - ``__doc__``: its own docstring whose numpydoc ``Parameters`` section
      also lists the bases' options, in the signature's order.
    - an ``__init__`` that first checks the option names: an alias of
      :data:`GUESSES` is passed on as the option it stands for; any other
      unknown name raises :class:`~pypoolparty.errors.UnknownOption`.

    Apply it to each Pool class, not only to a base: subclasses inherit
    ``__signature__``.

    Parameters
    ----------
    scheduler : str
        Which column of :data:`GUESSES` applies, one of :data:`SCHEDULERS`
        (another scheduler gets only the advice given for every pool).

    Returns
    -------
    callable
        The class decorator; it returns the class itself.
    """

    def decorate(cls: PoolClass) -> PoolClass:
        signature = _full_signature(cls)
        cls.__signature__ = signature
        cls.__doc__ = _full_docstring(cls, signature, scheduler)
        cls.__init__ = _checking_names(cls, scheduler, signature)
        return cls

    return decorate


def _full_signature(cls: type) -> inspect.Signature:
    own = inspect.signature(cls.__init__)
    parameters = [p for p in own.parameters.values() if p.name != "self"]
    for base in cls.__mro__[1:]:
        if "__init__" in vars(base) and base is not object:
            inherited = inspect.signature(base.__init__).parameters.values()
            parameters += [p for p in inherited if p.kind is inspect.Parameter.KEYWORD_ONLY]
    unique: dict[str, inspect.Parameter] = {}
    for parameter in parameters:
        if parameter.kind is not inspect.Parameter.VAR_KEYWORD:
            unique.setdefault(parameter.name, parameter)
    return own.replace(parameters=list(unique.values()), return_annotation=inspect.Signature.empty)


# ----------------------------------------------------------- the names


def _checking_names(cls: type, scheduler: str, signature: inspect.Signature) -> Callable:
    original = cls.__init__
    accepted = frozenset(signature.parameters)

    @functools.wraps(original)
    def __init__(self, *args: Any, **options: Any) -> None:
        # Asked here, not when decorating: the package that exports the
        # class binds its name only after the class is made.
        pool_name = public_name(cls)
        if len(args) > 1:
            raise UnknownOption(_too_many_positional(pool_name, len(args)))
        options = checked_option_names(pool_name, scheduler, accepted, options, bool(args))
        original(self, *args, **options)

    return __init__


def checked_option_names(
    pool_name: str,
    scheduler: str,
    accepted: frozenset[str],
    options: dict[str, Any],
    first_given_by_position: bool = False,
) -> dict[str, Any]:
    """``options`` with aliases replaced by the options they stand for.

    Parameters
    ----------
    pool_name : str
        The Pool as users import it, for the messages.
    scheduler : str
        Which advice of :data:`GUESSES` applies.
    accepted : frozenset of str
        The Pool's parameters.
    options : dict
        The keyword arguments the Pool was called with.
    first_given_by_position : bool
        Whether ``num_simultaneously_running_tasks`` was given by position.

    Raises
    ------
    pypoolparty.UnknownOption
        A name that is not an option of this Pool nor an alias of one (the
        message suggests the near misses, or says what to use), or an option
        given twice (by its name and an alias, or by position and an alias).
    """
    checked = {}
    for name, value in options.items():
        option = name if name in accepted else _alias(name, scheduler)
        if option is None:
            raise UnknownOption(unknown_option_message(pool_name, scheduler, accepted, name))
        given_twice = option in checked or (
            first_given_by_position and option == "num_simultaneously_running_tasks"
        )
        if given_twice:
            raise UnknownOption(
                f"{pool_name}() got {option!r} twice"
                + (f", also as {name!r} ({GUESSES[name].whose})" if name != option else "")
                + "; give it once."
            )
        checked[option] = value
    return checked


def _alias(name: str, scheduler: str) -> str | None:
    guess = GUESSES.get(name)
    advice = None if guess is None else guess.advice_for(scheduler)
    return advice.option if isinstance(advice, Alias) else None


def unknown_option_message(
    pool_name: str, scheduler: str, accepted: frozenset[str], name: str
) -> str:
    """What to say about ``name``, which is not an option of the Pool ``pool_name``."""
    guess = GUESSES.get(name)
    advice = None if guess is None else guess.advice_for(scheduler)
    if isinstance(advice, str):
        return f"{pool_name}() has no option {name!r} ({guess.whose}): {advice}."
    text = f"{pool_name}() got an unexpected keyword argument {name!r}"
    aliases = [n for n in GUESSES if _alias(n, scheduler) is not None]
    near = difflib.get_close_matches(name, sorted(accepted) + aliases, n=3)
    if near:
        text += f"; did you mean {' or '.join(repr(n) for n in near)}?"
    else:
        advised = [n for n in GUESSES if isinstance(GUESSES[n].advice_for(scheduler), str)]
        for guessed in difflib.get_close_matches(name, advised, n=1):
            guess = GUESSES[guessed]
            text += f"; if you meant {guessed!r} ({guess.whose}): {guess.advice_for(scheduler)}"
        text += "."
    return text + f" help({pool_name}) lists its options."


def _too_many_positional(pool_name: str, count: int) -> str:
    return (
        f"{pool_name}() takes one positional argument, num_simultaneously_running_tasks "
        f"(multiprocessing's processes), but {count} were given; give the others by "
        "name. multiprocessing's initializer and initargs are not supported (call the setup "
        "at the start of the task function), nor maxtasksperchild (each job is a new process) "
        "and context."
    )


def public_name(cls: type) -> str:
    """The dotted name users import ``cls`` by: ``pypoolparty.sun_grid_engine.Pool``
    rather than the module that defines it, ``pypoolparty.sun_grid_engine.pool.Pool``."""
    module = cls.__module__
    while "." in module:
        parent = module.rsplit(".", 1)[0]
        if getattr(sys.modules.get(parent), cls.__name__, None) is not cls:
            break
        module = parent
    return f"{module}.{cls.__qualname__}"


# ------------------------------------------------------- the docstring

_SECTION_HEADER = re.compile(r"^(\S[^\n]*)\n-{3,}\n", re.MULTILINE)


def _full_docstring(cls: type, signature: inspect.Signature, scheduler: str) -> str | None:
    """``cls``'s docstring with the ``Parameters`` of its bases merged in,
    each followed by the aliases it is accepted as."""
    own = inspect.cleandoc(cls.__doc__ or "")
    entries = []
    for klass in cls.__mro__:
        if klass.__dict__.get("__doc__"):
            entries += _parameter_entries(inspect.cleandoc(klass.__dict__["__doc__"]))
    order = list(signature.parameters)
    chosen, documented = [], set()
    for names, text in entries:
        wanted = [n for n in names if n in order and n not in documented]
        if wanted and len(wanted) == len([n for n in names if n in order]):
            chosen.append(
                (min(order.index(n) for n in wanted), text + _aliases_of(names, scheduler))
            )
            documented.update(wanted)
    if not chosen:
        return cls.__doc__
    section = "Parameters\n----------\n" + "\n".join(
        text for _, text in sorted(chosen, key=lambda item: item[0])
    )
    head, _, tail = _split_parameters(own)
    return f"{head}{section}\n{tail}".rstrip() + "\n"


def _aliases_of(names: list[str], scheduler: str) -> str:
    return "".join(
        f"\n    Also accepted as ``{alias}``, {guess.whose}."
        for alias, guess in GUESSES.items()
        if _alias(alias, scheduler) in names
    )


def _split_parameters(doc: str) -> tuple[str, str, str]:
    """``doc`` as (before, the Parameters section, after); before is all if none."""
    headers = list(_SECTION_HEADER.finditer(doc))
    for i, header in enumerate(headers):
        if header.group(1).strip() == "Parameters":
            end = headers[i + 1].start() if i + 1 < len(headers) else len(doc)
            body = doc[header.end() : end]
            return doc[: header.start()], body, "\n" + doc[end:] if end < len(doc) else ""
    return doc.rstrip() + "\n\n", "", ""


def _parameter_entries(doc: str) -> list[tuple[list[str], str]]:
    """The entries of ``doc``'s Parameters section: (their names, their text).

    An entry starts at an unindented line ``name : type`` (or ``a, b : type``);
    ``**options`` entries, which say "and the base's options", are left out.
    """
    _, body, _ = _split_parameters(doc)
    entries: list[tuple[list[str], list[str]]] = []
    for line in body.splitlines():
        if line and not line[0].isspace():
            names = [n.strip() for n in line.split(" : ", 1)[0].split(",")]
            entries.append((names, [line]))
        elif entries:
            entries[-1][1].append(line)
    return [
        (names, "\n".join(lines).rstrip())
        for names, lines in entries
        if not any(n.startswith("*") for n in names)
    ]
