"""Job ids as qdel and qmod take them: ``JOB``, ``JOB.TASKS`` and ``JOB -t TASKS``."""

import re

TARGET = re.compile(r"^(\d+)(?:\.(\d+)(?:-(\d+))?)?$")


def targets(argv):
    """[(job number, task ids or None for all)] from qdel's arguments."""
    wanted = []
    index = 0
    while index < len(argv):
        argument = argv[index]
        if argument == "-t" and wanted and index + 1 < len(argv):
            first, _, last = argv[index + 1].partition("-")
            wanted[-1] = (wanted[-1][0], list(range(int(first), int(last or first) + 1)))
            index += 2
            continue
        match = TARGET.match(argument)
        if match is None:
            raise ValueError(f'ERROR! invalid job id "{argument}"')
        number, first, last = match.groups()
        tasks = None if first is None else list(range(int(first), int(last or first) + 1))
        wanted.append((number, tasks))
        index += 1
    return wanted
