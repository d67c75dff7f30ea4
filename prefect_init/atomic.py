"""Atomic file output: a temporary file in the same directory, fsync, rename.

A reader sees the old file or the new one, never half of one; a failure leaves the old file untouched and no
temporary file behind. The temporary file is created with its final mode from the start, so a secret is never
readable by more than the spec allows, even for a moment.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class AtomicFile:
    """A temporary file beside ``target`` that replaces it only on :meth:`commit`.

    Between writing and committing, the temporary file can be read back (:attr:`temp_path`) and checked; leaving
    the ``with`` block without committing (an exception, or a decision not to) removes it and leaves ``target``
    as it was.
    """

    def __init__(self, target: str | os.PathLike[str], mode: int = 0o644, owner: tuple[int, int] | None = None):
        self.target = Path(target)
        self.mode, self.owner = mode, owner
        self.committed = False

    def __enter__(self) -> AtomicFile:
        fd, name = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".tmp", dir=self.target.parent)
        self.temp_path = Path(name)
        try:
            os.fchmod(fd, self.mode)
            if self.owner is not None:
                os.fchown(fd, *self.owner)
        except BaseException:
            os.close(fd)
            self.temp_path.unlink()
            raise
        self.handle: IO[bytes] = os.fdopen(fd, "wb")
        return self

    def commit(self, exclusive: bool = False) -> None:
        """Publish the file: fsync, then rename over the target (or hard-link: never replace, if ``exclusive``)."""
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        if exclusive:
            os.link(self.temp_path, self.target)
            self.temp_path.unlink()
        else:
            os.replace(self.temp_path, self.target)
        self.committed = True
        _fsync_dir(self.target.parent)

    def __exit__(self, *exc: object) -> None:
        if not self.handle.closed:
            self.handle.close()
        if not self.committed:
            with contextlib.suppress(FileNotFoundError):
                self.temp_path.unlink()


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], mode: int = 0o644, *, owner: tuple[int, int] | None = None,
                  exclusive: bool = False) -> Iterator[IO[bytes]]:
    """Yield a binary file; on a clean exit it replaces ``path`` atomically, on an exception it vanishes.

    ``exclusive=True`` publishes with a hard link instead of a rename, so an existing file is never replaced
    (FileExistsError is raised instead) - for creating files that another replica may be creating too.
    """
    with AtomicFile(path, mode, owner) as out:
        yield out.handle
        out.commit(exclusive)


def write_atomic(path: str | os.PathLike[str], data: bytes | str, mode: int = 0o644,
                 owner: tuple[int, int] | None = None) -> None:
    """Replace ``path`` with ``data`` atomically (see :func:`atomic_writer`)."""
    payload = data.encode() if isinstance(data, str) else data
    with atomic_writer(path, mode, owner=owner) as handle:
        handle.write(payload)
