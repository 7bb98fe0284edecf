"""Share one test broker between test sessions that run at the same time.

Several developers (or one developer's terminals) may run the suite at once
against the same state directory. Each session holds a lease (a file named
after its pid) while it uses the broker; the broker is started by whichever
session comes first and stopped by whichever leaves last, so no session pulls
the broker from under another. A lease left by a crashed session is ignored
once its process is gone.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from ops.kafka import process

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from ops.kafka.local import BrokerStatus, LocalKafka


@contextlib.contextmanager
def shared_broker(kafka: LocalKafka) -> Iterator[BrokerStatus]:
    """Hold the broker up for the duration of the block; stop it if we are the last user."""
    state_dir = kafka.settings.state_dir
    leases = state_dir / "leases"
    lock = state_dir / ".leases.lock"
    own_lease = leases / str(os.getpid())
    with process.file_lock(lock):
        status = kafka.up()
        leases.mkdir(parents=True, exist_ok=True)
        own_lease.touch()
    try:
        yield status
    finally:
        with process.file_lock(lock):
            own_lease.unlink(missing_ok=True)
            if not _live_leases(leases):
                kafka.down()


def _live_leases(leases: Path) -> list[int]:
    live = []
    for lease in leases.iterdir():
        if not lease.name.isdigit():
            continue
        pid = int(lease.name)
        if _alive(pid):
            live.append(pid)
        else:
            lease.unlink(missing_ok=True)
    return live


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # Someone else's process: alive, and not ours to judge.
    return True
