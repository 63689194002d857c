"""One study, one driver: a lock file in the study's folder, taken before Ray starts.

    <storage>/<study>/driver.lock     {"host": "node-1", "pid": 4242, "since": "2026-12-02T16:05:00+00:00", ...}

`rl-hyper sweep` (and `--resume`) holds the lock for as long as it runs: an exclusive `flock` on
the file, which the kernel releases when the process ends however it ends, plus the holder's
host, pid and start time written in it for the message a second driver gets:

    study quickstart is being run by pid 4242 on node-1 since 2026-12-02T16:05:00+00:00 (results/quickstart/driver.lock)

A lock file whose flock is free is taken over when it names this host: its process no longer
runs (a driver killed with SIGKILL leaves its file behind, and the kernel has dropped its flock).
One that names another host
is refused, since that driver's state cannot be checked from here (a shared filesystem may not
pass flocks between hosts): the message says to delete the file once that driver is gone.
A study on cloud storage (s3://, gs://) has no lock: run one driver per study there.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path

LOCK_FILE = "driver.lock"


class StudyLockedError(RuntimeError):
    """Another driver runs this study; the message names it (host, pid, since) and the lock file."""


def _holder_text(holder: dict, path: Path) -> str:
    return f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since')} ({path})"


class StudyLock:
    """The lock of the study folder `directory` (created if missing, and removed again on exit if
    the run left it empty: a study that failed before it wrote anything leaves nothing); a
    context manager.

        with StudyLock(Path("results/quickstart"), "quickstart"):
            ...  # run the study

    Raises StudyLockedError on entering when another driver holds it.
    """

    def __init__(self, directory: Path, study: str):
        self.path = Path(directory) / LOCK_FILE
        self.study = study
        self._file = None
        self._created_directory = False

    def __enter__(self) -> StudyLock:
        self._created_directory = not self.path.parent.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            stream = self.path.open("a+")
            try:
                fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._read(stream)
                stream.close()
                raise StudyLockedError(f"study {self.study} is being run by {_holder_text(holder, self.path)}") from None
            if os.path.exists(self.path) and os.stat(self.path).st_ino == os.fstat(stream.fileno()).st_ino:
                break  # (a releasing driver may have deleted the file between our open and flock)
            stream.close()
        holder = self._read(stream)
        if holder and holder.get("host") != socket.gethostname():
            stream.close()
            raise StudyLockedError(f"study {self.study} is being run by {_holder_text(holder, self.path)}; "
                                   f"delete {self.path} if that driver is gone")
        stream.seek(0)
        stream.truncate()
        stream.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                 "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                 "command": " ".join(sys.argv)}) + "\n")
        stream.flush()
        self._file = stream
        return self

    def __exit__(self, *exc) -> None:
        """Delete the file, then let go of the flock (in this order, see the inode check above).
        Where the storage no longer allows that (read-only, vanished) the file stays: the run's own
        error says why, and the next driver on this host takes over a dead driver's lock."""
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
        self._file.close()
        self._file = None
        if self._created_directory and not any(self.path.parent.iterdir()):
            self.path.parent.rmdir()

    @staticmethod
    def _read(stream) -> dict:
        stream.seek(0)
        try:
            return json.loads(stream.read() or "{}")
        except json.JSONDecodeError:
            return {}  # a file cut while it was written: nobody can hold it
