"""Command faults: fail with Grid Engine's own words, hang, or print garbage."""

import socket
import sys
import time

from . import state


def unreachable_message(command):
    host = socket.gethostname()
    lines = [
        "error: commlib error: got select error (Connection refused)",
        f'unable to send message to qmaster using port 6444 on host "{host}": got send error',
    ]
    if command == "qsub":
        lines[1] = f"Unable to run job: {lines[1]}"
        lines.append("Exiting.")
    else:
        lines[1] = f"error: {lines[1]}"
    return "\n".join(lines) + "\n"


def fail_if_injected(directory, command):
    """Exit 1 like a command that cannot reach the qmaster, if faults.json says so."""
    if state.take_fault(directory, "fail_commands", command):
        sys.stderr.write(unreachable_message(command))
        sys.exit(1)


def hang_if_injected(directory, command):
    """Hang until killed, if faults.json says so."""
    if state.take_fault(directory, "hang_commands", command):
        while True:
            time.sleep(60)


def garbage_if_injected(directory, command):
    """Print garbage and exit 0, if faults.json says so."""
    if state.take_fault(directory, "garbage_commands", command):
        sys.stdout.write("<html><body>502 Bad Gateway</body>\x00\x7f garbage\n")
        sys.exit(0)
