"""Run the worker inside a container image: Apptainer, Podman, Docker or Charliecloud.

A pool given ``container=Container(image, runtime)`` starts each job's worker
through the runtime instead of directly. :func:`command` builds that command
line from the worker's own: a pure function of its arguments, so that the
command lines are tested against each runtime's documented syntax without a
runtime. :func:`for_pool` checks and completes a :class:`Container` once,
when the pool is made, before anything is submitted.

What every runtime gets (see :func:`command` for the flags and the manuals
they come from):

- the work_dir (which holds the map's session directory) and the submitting
  process's working directory mounted at the same paths, plus
  :attr:`Container.binds`; the job starts in that working directory, as a
  :mod:`multiprocessing` worker would. The work_dir rather than the session
  directory, whose name changes with every map: an image that needs a mount
  point per bind (Charliecloud's, read-only) needs one made once;
- with :attr:`Container.gpus`, the runtime's flag that makes the host's
  NVIDIA GPUs visible;
- the environment: the job's launcher exports the variables the pool exports (the
  ``environment`` option) inside the container, whatever the runtime.
  Apptainer, Singularity and Charliecloud also pass the job's own variables
  in, as they do by default; Podman and Docker start from the image's
  environment and get only the variable that holds the array index.

The interpreter is the image's: ``python_path`` names a Python inside the
image, with cloudpickle installed (or mounted in with ``binds``).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Sequence

from .errors import BadInput

RUNTIMES = ("apptainer", "singularity", "podman", "docker", "charliecloud")
"""The runtimes a :class:`Container` can name."""

EXECUTABLES = {
    "apptainer": "apptainer",
    "singularity": "singularity",
    "podman": "podman",
    "docker": "docker",
    "charliecloud": "ch-run",
}
"""The command of each runtime, looked up on ``PATH`` when the pool is made."""

_IMAGE_FILES = ("apptainer", "singularity", "charliecloud")
"""Runtimes whose image may be a path (a SIF file, a sandbox or image
directory) rather than a name in an image store: a relative path is made
absolute, since the jobs start in another directory."""

# ch-run refuses to start without $USER (0.31: "$USER not set"), and HTCondor
# starts jobs without it (getenv = False). The job's own user name is known
# only on the node, hence a shell that sets it there when it is missing.
_SET_USER = 'export USER="${USER:-$(id -un)}"; exec "$0" "$@"'


@dataclasses.dataclass(frozen=True)
class Container:
    """An image and the runtime that runs the worker in it.

    Parameters
    ----------
    image : str
        What the runtime runs. Apptainer/Singularity: a SIF file, a sandbox
        directory, or a URI such as ``docker://python:3.12``. Podman/Docker:
        an image name, e.g. ``python:3.12-slim`` (pulled by the runtime if
        missing). Charliecloud: an image directory (e.g. from
        ``ch-convert``), a SquashFS file, or a name in ``ch-image`` storage.
        A relative path is made absolute when the pool is made.
    runtime : str
        One of ``"apptainer"``, ``"singularity"``, ``"podman"``,
        ``"docker"``, ``"charliecloud"``.
    gpus : bool
        Make the host's NVIDIA GPUs visible in the container: ``--nv``
        (Apptainer/Singularity), ``--device nvidia.com/gpu=all`` (Podman, by
        CDI), ``--gpus all`` (Docker). Charliecloud needs no flag for the
        devices, which it shares with the host (``/dev`` is always
        mounted); the driver's libraries must be in the image
        (``ch-fromhost --nvidia``). The scheduler's GPU request is a separate
        option of the pool (``gpus``, ``request_gpus``, ...).
    options : sequence of str
        Further arguments of the runtime, placed before the image, e.g.
        ``("--network", "host")``; one argument per
        item.
    binds : sequence of str
        Further host paths to mount: ``"/data"`` (at the same path) or
        ``"/scratch/me:/scratch"`` (host path, then path in the container).
        Absolute paths, without ``,`` or more than one ``:``.
    executable : str, optional
        The runtime's command on the compute nodes. Default: the runtime's
        usual command (:data:`EXECUTABLES`), resolved to an absolute path on
        this machine's ``PATH`` when the pool is made (HTCondor needs an
        absolute executable); left as the name when not found here.

    Raises
    ------
    pypoolparty.BadInput
        A field has a value the runtime cannot take.
    """

    image: str
    runtime: str
    gpus: bool = False
    options: Sequence[str] = ()
    binds: Sequence[str] = ()
    executable: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.image, str) or not self.image.strip():
            raise BadInput(f"Container image must be a non-empty string, not {self.image!r}.")
        if self.runtime not in RUNTIMES:
            raise BadInput(
                f"Container runtime {self.runtime!r} is not one of {', '.join(RUNTIMES)}"
                + (" (ch-run is Charliecloud's)" if self.runtime == "ch-run" else "")
                + "."
            )
        if not isinstance(self.gpus, bool):
            raise BadInput(f"Container gpus must be True or False, not {self.gpus!r}.")
        object.__setattr__(self, "options", _strings("options", self.options))
        object.__setattr__(self, "binds", _strings("binds", self.binds))
        for bind in self.binds:
            _check_bind(bind, self.runtime, allow_destination=True)
        if self.executable is not None and (
            not isinstance(self.executable, str) or not self.executable
        ):
            raise BadInput(
                f"Container executable must be a path or command name, not {self.executable!r}."
            )
        for text in (self.image, *self.options, *self.binds, self.executable or ""):
            if "\n" in text or "\r" in text or "\0" in text:
                raise BadInput(f"Container field {text!r} holds a line break or NUL.")

    def identity(self) -> str:
        """What may make two maps' results differ: all but the executable's path."""
        return repr((self.runtime, self.image, self.gpus, self.options, self.binds))


def _strings(name: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise BadInput(
            f"Container {name} must be a list of strings, one argument each, not {value!r}; "
            f"e.g. {name}=['--writable-tmpfs'] rather than {name}='--writable-tmpfs'."
        )
    return tuple(value)


def _check_bind(bind: str, runtime: str, allow_destination: bool = False) -> None:
    """Refuse a bind the runtime's syntax cannot express."""
    parts = bind.split(":")
    if len(parts) > (2 if allow_destination else 1) or not all(parts):
        raise BadInput(
            f"cannot mount {bind!r} into a {runtime} container: the runtimes' bind syntax "
            "(SRC[:DST]) splits at ':', so a path holding ':' cannot be mounted. Use a "
            "work_dir and a working directory whose paths have no ':'."
        )
    if runtime in ("apptainer", "singularity") and "," in bind:
        raise BadInput(
            f"cannot mount {bind!r} into an {runtime} container: --bind splits its value at "
            "','. Use paths without ','."
        )
    if not all(os.path.isabs(part) for part in parts):
        raise BadInput(f"a bind of a container needs absolute paths, not {bind!r}.")


def for_pool(container: object) -> Container | None:
    """Check the pool's ``container`` option and complete it for the jobs.

    Parameters
    ----------
    container : Container or None
        The option as given.

    Returns
    -------
    Container or None
        The same, with a relative image path made absolute (for the
        runtimes that take files) and the runtime's command resolved on this
        machine's ``PATH`` when no ``executable`` was given.

    Raises
    ------
    pypoolparty.BadInput
        ``container`` is not a :class:`Container` (a bare image name does not
        say which runtime runs it).
    """
    if container is None:
        return None
    if not isinstance(container, Container):
        raise BadInput(
            f"container must be a pypoolparty.Container, not {container!r}: name the "
            "runtime too, e.g. container=pypoolparty.Container('image.sif', "
            "runtime='apptainer')."
        )
    image = container.image
    if container.runtime in _IMAGE_FILES and os.path.exists(image):
        image = os.path.abspath(image)
    executable = container.executable
    if executable is None:
        name = EXECUTABLES[container.runtime]
        executable = shutil.which(name) or name
    return dataclasses.replace(container, image=image, executable=executable)


def command(
    container: Container,
    inner: list[str],
    binds: list[str],
    workdir: str,
    *,
    environment: Sequence[str] = (),
    user: tuple[int, int] | None = None,
) -> list[str]:
    """The command line that runs ``inner`` inside ``container``.

    Parameters
    ----------
    container : Container
        The image and runtime (see :func:`for_pool` for the executable).
    inner : list of str
        The command to run in the container, e.g. the worker's command line;
        its first item is a path inside the image.
    binds : list of str
        Absolute host paths mounted at the same paths in the container (the
        work_dir, the working directory; never ``/``), before
        :attr:`Container.binds`; repeated paths are mounted once.
    workdir : str
        The working directory in the container (also mounted).
    environment : sequence of str
        Names of job variables the command needs inside the container, such
        as ``SLURM_ARRAY_TASK_ID``. Passed by name (``-e NAME``, the value
        taken from the job's environment) to Podman and Docker, which start
        from the image's environment; Apptainer, Singularity and
        Charliecloud pass every job variable in by default.
    user : (int, int), optional
        The uid and gid the job runs as. Docker then runs the command as
        that user (``--user uid:gid``), so that the files it writes into the
        session directory belong to the job's user, not to root; rootless
        Podman (uid not 0) keeps the user's id in the container
        (``--userns=keep-id``) for the same reason.

    Returns
    -------
    list of str
        The argv, one argument per item, to be run on the compute node.

    Raises
    ------
    pypoolparty.BadInput
        A path in ``binds`` or ``workdir`` that the runtime cannot mount.

    Notes
    -----
    The syntax of each runtime, from its manual:

    - Apptainer / Singularity, ``apptainer exec [exec options...] <container>
      <command>`` (apptainer-exec(1), https://apptainer.org/docs/user/main/cli/apptainer_exec.html):
      ``--bind src[:dest[:opts]]`` (a comma separates several, hence no
      ``,`` in paths), ``--pwd`` the initial working directory, ``--nv`` the
      NVIDIA GPUs. The host environment is passed in by default; with
      ``options=["--cleanenv"]`` the array index variable of SLURM or Grid
      Engine would be lost, so do not use it with the array pools.
    - Podman, ``podman run [options] image [command [arg ...]]``
      (podman-run(1), https://docs.podman.io/en/latest/markdown/podman-run.1.html):
      ``--rm``, ``-v, --volume SOURCE-VOLUME|HOST-DIR:CONTAINER-DIR``,
      ``-w, --workdir``, ``-e, --env`` (a name without value takes the
      host's), ``--userns=keep-id`` (rootless only), ``--device
      nvidia.com/gpu=all`` (CDI, NVIDIA Container Toolkit's "Support for
      Container Device Interface").
    - Docker, ``docker run [OPTIONS] IMAGE [COMMAND] [ARG...]``
      (https://docs.docker.com/reference/cli/docker/container/run/): the
      same ``--rm``, ``-v``, ``-w``, ``-e``, and ``--user``, ``--gpus all``.
      No ``--network`` is set: the worker needs files, not the network.
    - Charliecloud 0.31, ``ch-run [OPTION...] IMAGE -- CMD [ARG...]``
      (ch-run(1), https://hpc.github.io/charliecloud/ch-run.html):
      ``-b, --bind=SRC[:DST]``, ``-c, --cd=DIR``. The host environment is
      passed through (``$TMPDIR`` unset, ``$CH_RUNNING`` set). With a
      read-only image (the default) each ``DST`` must already exist in the
      image, unless it lies under a directory ch-run already shares with
      the host (``/tmp``); ``-w, --write`` mounts the image read-write and
      creates missing ones, changing the image. 0.31 has no
      ``--write-fake``/``-W`` (a tmpfs overlay that leaves the image
      untouched), which later versions added. ch-run needs ``$USER``, which
      HTCondor's jobs lack: the command sets it from ``id -un`` when missing.
    """
    executable = container.executable or EXECUTABLES[container.runtime]
    # "/" is never mounted: it would hide the image (a job submitted from "/"
    # starts in the image's own root).
    paths = [p for p in dict.fromkeys([*binds, workdir]) if p != "/"]
    for path in paths:
        _check_bind(path, container.runtime)
    pairs = [f"{p}:{p}" for p in paths] + [
        b if ":" in b else f"{b}:{b}" for b in container.binds if b not in paths
    ]
    runtime = container.runtime
    if runtime in ("apptainer", "singularity"):
        return [
            executable,
            "exec",
            *(["--nv"] if container.gpus else []),
            *_each("--bind", pairs),
            "--pwd",
            workdir,
            *container.options,
            container.image,
            *inner,
        ]
    if runtime in ("podman", "docker"):
        if runtime == "podman":
            identity = ["--userns=keep-id"] if user is not None and user[0] != 0 else []
            gpus = ["--device", "nvidia.com/gpu=all"]
        else:
            identity = ["--user", f"{user[0]}:{user[1]}"] if user is not None else []
            gpus = ["--gpus", "all"]
        return [
            executable,
            "run",
            "--rm",
            *identity,
            *(gpus if container.gpus else []),
            *_each("-v", pairs),
            "-w",
            workdir,
            *_each("-e", list(environment)),
            *container.options,
            container.image,
            *inner,
        ]
    return [
        "/bin/sh",
        "-c",
        _SET_USER,
        executable,
        *_each("-b", pairs),
        "-c",
        workdir,
        *container.options,
        container.image,
        "--",
        *inner,
    ]


def _each(flag: str, values: list[str]) -> list[str]:
    return [item for value in values for item in (flag, value)]
