"""Atomic file output: a temporary file in the same directory, fsync, rename.

A reader sees the old file or the new one, never half of one; a failure leaves the old file untouched and no
temporary file behind, even when the failure is in ``close`` or ``fsync`` themselves (a full volume reports
ENOSPC there, for the buffered data). The temporary file is created with its final mode from the start, so a
secret is never readable by more than the spec allows, even for a moment.

A process killed while writing (SIGKILL, an OOM kill) leaves its temporary file; the next writer of the same
target removes it. Every temporary file is held with an exclusive ``flock`` while it is written, so a writer
removes only the leftovers nobody holds, never a racing replica's file in progress.

Every ``OSError`` comes out as a :class:`~prefect_init.errors.StepFailed` that names the path and the cause in
words (``/config/app.yaml: no space left on device (the volume is full)``): final, since retrying a full or
read-only volume does not help.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from prefect_init.errors import StepError, StepFailed

CAUSES = {
    errno.ENOSPC: "no space left on device (the volume is full)",
    errno.EDQUOT: "disk quota exceeded (the volume's quota is used up)",
    errno.EROFS: "read-only file system (the volume is mounted read-only)",
    errno.EACCES: "permission denied (check the volume's owner, fsGroup and mode)",
    errno.EPERM: "operation not permitted (check the user the container runs as)",
    errno.ENOENT: "no such file or directory",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
    errno.EISDIR: "it is a directory",
    errno.EIO: "input/output error (the volume or its device failed)",
}


def describe(path: str | os.PathLike[str], exc: OSError) -> str:
    """``PATH: the cause in words`` for the person reading the pod's log."""
    cause = CAUSES.get(exc.errno or 0) or (exc.strerror or type(exc).__name__).lower()
    return f"{path}: {cause}"


def write_error(path: str | os.PathLike[str], exc: OSError) -> StepFailed:
    return StepFailed(describe(path, exc))


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_leftovers(target: Path) -> None:
    """Remove temporary files of ``target`` left by a writer that was killed (nobody holds their lock)."""
    with contextlib.suppress(OSError):
        for candidate in target.parent.glob(f".{target.name}.*.tmp"):
            try:
                fd = os.open(candidate, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # held: a live writer's file
            else:
                with contextlib.suppress(OSError):
                    candidate.unlink()
            finally:
                os.close(fd)


class AtomicFile:
    """A temporary file beside ``target`` that replaces it only on :meth:`commit`.

    Between writing and committing, the temporary file can be read back (:attr:`temp_path`) and checked; leaving
    the ``with`` block without committing (an exception, or a decision not to) removes it and leaves ``target``
    as it was. An ``OSError`` inside the block or in the commit becomes a :class:`StepFailed` naming the target.
    """

    def __init__(self, target: str | os.PathLike[str], mode: int = 0o644, owner: tuple[int, int] | None = None):
        self.target = Path(target)
        self.mode, self.owner = mode, owner
        self.committed = False

    def __enter__(self) -> AtomicFile:
        remove_leftovers(self.target)
        try:
            fd, name = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".tmp", dir=self.target.parent)
        except OSError as exc:
            raise write_error(self.target, exc) from None
        self.temp_path = Path(name)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.fchmod(fd, self.mode)
            if self.owner is not None:
                os.fchown(fd, *self.owner)
        except BaseException as exc:
            os.close(fd)
            self._remove_temp()
            if isinstance(exc, OSError):
                raise write_error(self.target, exc) from None
            raise
        self.handle: IO[bytes] = os.fdopen(fd, "wb")
        return self

    def commit(self, exclusive: bool = False) -> None:
        """Publish the file: fsync, then rename over the target (or hard-link: never replace, if ``exclusive``).

        A failure raises :class:`StepFailed` (``FileExistsError`` stays itself for ``exclusive``) and leaves the
        temporary file to :meth:`__exit__`, which removes it."""
        try:
            self.handle.flush()
            os.fsync(self.handle.fileno())
            self.handle.close()
            if exclusive:
                os.link(self.temp_path, self.target)
                self._remove_temp()
            else:
                os.replace(self.temp_path, self.target)
        except FileExistsError:
            raise
        except OSError as exc:
            raise write_error(self.target, exc) from None
        self.committed = True
        _fsync_dir(self.target.parent)

    def _remove_temp(self) -> None:
        with contextlib.suppress(OSError):
            self.temp_path.unlink()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        close_error: OSError | None = None
        try:
            if not self.handle.closed:
                self.handle.close()  # may raise ENOSPC for what was still buffered
        except OSError as error:
            close_error = error  # the buffered writer closes its descriptor even when its flush fails
        finally:
            if not self.committed:
                self._remove_temp()
        if isinstance(exc, OSError) and not isinstance(exc, FileExistsError) and not isinstance(exc, StepError):
            raise write_error(self.target, exc) from None
        if close_error is not None and exc is None:
            raise write_error(self.target, close_error) from None


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


def make_parent(path: Path) -> None:
    """Create ``path``'s missing directories (mode 0777 less the umask: 0755 by default), or fail in words."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StepFailed(f"{describe(path.parent, exc)} (creating the directory of {path.name})") from None
