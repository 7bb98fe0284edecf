"""Operating-system plumbing for the broker process: launch, recognise, stop.

A pid file alone cannot be trusted (the broker may have died and its pid been
reused), so a process only counts as ours when its command line names the
broker's main class and our state directory's ``server.properties``. Nothing
here ever signals a process that fails that test.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

KAFKA_MAIN_CLASS = "kafka.Kafka"
_PROC = Path("/proc")


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Serialise commands that change one broker's state, across processes.

    Two ``up`` calls at once (two terminals, two test sessions) must not both
    launch a JVM; the lock is released by the kernel even if we crash.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def command_line(pid: int) -> str | None:
    """Return the process's arguments joined by spaces, or None if it is gone or a zombie."""
    cmdline = _PROC / str(pid) / "cmdline"
    if _PROC.is_dir():
        try:
            raw = cmdline.read_bytes()
        except OSError:
            return None
        # A zombie keeps its pid but has an empty command line: it is not running.
        return raw.replace(b"\0", b" ").decode(errors="replace").strip() or None
    try:  # No /proc (macOS): ask ps.
        result = subprocess.run(
            ["ps", "-o", "args=", "-p", str(pid)],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def is_our_broker(pid: int, server_properties: Path) -> bool:
    """Tell our broker from a stranger that happens to hold a recycled pid."""
    args = command_line(pid)
    return args is not None and KAFKA_MAIN_CLASS in args and str(server_properties) in args


def find_our_broker(server_properties: Path) -> int | None:
    """Find our broker when its pid file was lost, so it is never run twice."""
    if not _PROC.is_dir():
        return None
    for entry in _PROC.iterdir():
        if entry.name.isdigit() and is_our_broker(int(entry.name), server_properties):
            return int(entry.name)
    return None


def read_pid(pid_path: Path) -> int | None:
    """Return the pid recorded in a pid file, or None when there is no usable one."""
    try:
        text = pid_path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def write_pid(pid_path: Path, pid: int) -> None:
    """Write the pid file atomically, so a reader never sees half a number."""
    partial = pid_path.with_suffix(f".partial-{os.getpid()}")
    partial.write_text(f"{pid}\n")
    partial.replace(pid_path)


def reap(pid: int) -> int | None:
    """Collect our own child's exit status; None while it runs or if it is not our child.

    The test fixture launches the broker from the pytest process, which must
    reap it, or the dead broker would linger as a zombie until pytest exits.
    """
    try:
        reaped, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    if reaped == 0:
        return None
    return os.waitstatus_to_exitcode(status)


def spawn_detached(argv: Sequence[str], log_path: Path) -> int:
    """Start a process that outlives the command that started it.

    It gets its own session (a Ctrl-C in the terminal that ran ``up`` does not
    reach it), stdin from /dev/null, and stdout and stderr appended to the log,
    so it holds none of our pipes open: a caller capturing ``up``'s output
    returns as soon as ``up`` does. ``posix_spawn`` leaves no Popen object
    behind to warn about a child still running.
    """
    return os.posix_spawn(
        argv[0],
        list(argv),
        dict(os.environ),
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,
    )


def wait_until_ours(pid: int, server_properties: Path, timeout: float = 10.0) -> bool:
    """Wait until a just-spawned child has exec'd into our broker.

    ``posix_spawn`` may return while the child still runs the spawning code
    (its command line is empty for a few milliseconds): checking it at once
    would take a healthy start for a dead process.
    """
    deadline = time.monotonic() + timeout
    while not is_our_broker(pid, server_properties):
        if reap(pid) is not None or time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
    return True


def stop(pid: int, server_properties: Path, *, grace: float = 20.0) -> bool:
    """Stop our broker: SIGTERM for a clean shutdown, SIGKILL if it ignores that.

    Returns False when the process was not ours to stop. Kafka flushes and closes
    its logs on SIGTERM, which spares the next start a log recovery.
    """
    if not is_our_broker(pid, server_properties):
        return False
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if wait_gone(pid, server_properties, wait):
            return True
    return not is_our_broker(pid, server_properties)


def wait_gone(pid: int, server_properties: Path, timeout: float) -> bool:
    """Wait until the process has exited; True if it did within the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        reap(pid)
        if not is_our_broker(pid, server_properties):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def port_is_free(host: str, port: int) -> bool:
    """Whether the broker could bind the port, tested by binding it ourselves.

    SO_REUSEADDR mirrors what the JVM sets on its server sockets, so a port
    that only has connections in TIME_WAIT from the previous broker still
    counts as free, while any listener (ours or anyone's) does not.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno in {errno.EADDRINUSE, errno.EACCES}:
                return False
            raise
    return True


def port_accepts(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections on the port (cheap pre-check)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def last_lines(text: str, lines: int) -> str:
    """Keep the end of a tool's output, where the reason it failed usually is."""
    return "\n".join(text.strip().splitlines()[-lines:])


def tail(path: Path, lines: int = 30) -> str:
    """Show the end of a log, so a failed start explains itself without opening files."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return last_lines(text, lines)
