"""Atomic file output: a temporary file in the same directory, fsync, rename; and paths walked without
following a link that the app could have planted.

A reader sees the old file or the new one, never half of one; a failure leaves the old file untouched and no
temporary file behind, even when the failure is in ``close`` or ``fsync`` themselves (a full volume reports
ENOSPC there, for the buffered data). The temporary file is created with its final mode from the start, so a
secret is never readable by more than the spec allows, even for a moment.

A process killed while writing (SIGKILL, an OOM kill) leaves its temporary file; the next writer of the same
target removes it. Every temporary file is held with an exclusive ``flock`` while it is written, so a writer
removes only the leftovers nobody holds, never a racing replica's file in progress.

Links (docs/hardening/links.md): the pod runs as root on volumes the app can write, so a path is walked from
``/`` one directory at a time (``openat`` with ``O_NOFOLLOW``), and the temporary file, the rename and every
mode or owner change happen relative to the directory so opened. A symbolic link on the way is followed only
where nobody but root (or this user) could have put it: in a directory owned by root (or this user) that no
group and no other may write (``/var/run -> /run`` on Debian). Anywhere else, and always at the path's last
component, a link is refused in words (:func:`link_refused`).

Every ``OSError`` comes out as a :class:`~prefect_init.errors.StepFailed` that names the path and the cause in
words (``/config/app.yaml: no space left on device (the volume is full)``): final, since retrying a full or
read-only volume does not help.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import fcntl
import os
import secrets
import stat
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
    errno.ELOOP: "too many symbolic links",
}

MAX_LINKS = 40
"""Links followed in one walk at most (the kernel's own limit): a loop of links ends in an error."""

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PROC_FD = Path("/proc/self/fd")
_O_PATH = getattr(os, "O_PATH", 0)  # Linux; elsewhere a read-only descriptor does


def describe(path: str | os.PathLike[str], exc: OSError) -> str:
    """``PATH: the cause in words`` for the person reading the pod's log."""
    cause = CAUSES.get(exc.errno or 0) or (exc.strerror or type(exc).__name__).lower()
    return f"{path}: {cause}"


def write_error(path: str | os.PathLike[str], exc: OSError) -> StepFailed:
    return StepFailed(describe(path, exc))


def link_refused(path: str | os.PathLike[str], target: str) -> StepFailed:
    """The error for a link where prefect-init will not follow one."""
    return StepFailed(f"{path} is a symbolic link (to {target}); prefect-init never follows links in a volume: "
                      "remove it, or give the real path in the spec")


def trusted(dir_fd: int) -> bool:
    """Whether only root (or this user) can have put a link in this directory: owned by root or this user, and
    writable by no group and no other (as OpenSSH checks the path of ``authorized_keys``)."""
    st = os.fstat(dir_fd)
    return st.st_uid in (0, os.geteuid()) and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def read_only(dir_fd: int) -> bool:
    """Whether the directory is on a file system mounted read-only here (a ConfigMap or Secret volume)."""
    try:
        return bool(os.fstatvfs(dir_fd).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def open_dir(path: str | os.PathLike[str], *, create: bool = False, created: list[Path] | None = None,
             for_reading: bool = False) -> int:
    """A descriptor of the directory ``path``, walked from ``/`` without following a link that the app could
    have planted (see the module's text); with ``create``, missing directories are made (0777 less the umask)
    and listed in ``created``. ``for_reading`` also follows a link in a directory on a read-only mount (a
    ConfigMap volume's ``sub -> ..data/sub``): for a directory that is only read, never written.

    Raises :func:`link_refused` for such a link, ``OSError`` (its ``filename`` the full path reached) else.
    The caller closes the descriptor."""
    parts = collections.deque(Path(os.path.normpath(os.path.abspath(path))).parts[1:])
    fd = os.open("/", _DIR_FLAGS)
    where = Path("/")
    links = 0
    try:
        while parts:
            name = parts.popleft()
            if name in ("", "."):
                continue
            if name == "..":
                parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd, where = parent, where.parent
                continue
            here = where / name
            try:
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    if not create:
                        raise
                    try:
                        os.mkdir(name, 0o777, dir_fd=fd)
                    except FileExistsError:
                        pass  # made meanwhile (another replica): look again
                    else:
                        if created is not None:
                            created.append(here)
                    parts.appendleft(name)
                    continue
                if stat.S_ISLNK(st.st_mode):
                    target = os.readlink(name, dir_fd=fd)
                    if not (trusted(fd) or (for_reading and read_only(fd))):
                        raise link_refused(here, target)
                    links += 1
                    if links > MAX_LINKS:
                        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
                    if os.path.isabs(target):
                        root = os.open("/", _DIR_FLAGS)
                        os.close(fd)
                        fd, where = root, Path("/")
                    parts.extendleft(reversed(Path(target).parts[1:] if os.path.isabs(target)
                                              else Path(target).parts))
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    links += 1  # replaced by a link or a file since we looked: look again, a bounded number of times
                    if links > MAX_LINKS:
                        raise
                    parts.appendleft(name)
                    continue
                os.close(fd)
                fd, where = child, here
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror, str(here)) from None
        return fd
    except BaseException:
        os.close(fd)
        raise


def open_regular(path: Path, where: str) -> int:
    """A descriptor of a file to read (a ``config``'s ``file://`` source, a template's ``files:``), opened as a
    template's include is (docs/hardening/links.md): its directory walked without following a link the app could
    have planted; the file itself a link only on a read-only mount (a ConfigMap's ``app.yaml -> ..data/app.yaml``),
    and then one that stays in its directory; a regular file, opened without blocking (a FIFO). ``where`` begins
    each error. The caller closes the descriptor."""
    parent = open_dir(path.parent, for_reading=True)
    try:
        on_read_only = read_only(parent)
        try:
            flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
            fd = os.open(path.name, flags | (0 if on_read_only else os.O_NOFOLLOW), dir_fd=parent)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise link_refused(path, os.readlink(path.name, dir_fd=parent)) from None
            raise
        try:
            if on_read_only:
                inside, real = os.readlink(f"/proc/self/fd/{parent}"), os.readlink(f"/proc/self/fd/{fd}")
                if not real.startswith(inside.rstrip("/") + "/"):
                    raise StepFailed(f"{where}: {path} is a symbolic link to {real}, outside {path.parent}; "
                                     "prefect-init never follows a link out of a file's directory")
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise StepFailed(f"{where}: {path} is not a regular file (a FIFO, a device or a directory)")
            if st.st_nlink > 1 and not on_read_only:
                raise StepFailed(f"{where}: {path} has {st.st_nlink} hard links: another name of the same file may "
                                 "lie outside its directory; prefect-init reads a file in a writable directory only "
                                 "by its one name")
        except BaseException:
            os.close(fd)
            raise
        return fd
    finally:
        os.close(parent)


@contextlib.contextmanager
def opened_dir(path: str | os.PathLike[str], *, create: bool = False,
               created: list[Path] | None = None) -> Iterator[int]:
    """:func:`open_dir` as a context manager that closes the descriptor."""
    fd = open_dir(path, create=create, created=created)
    try:
        yield fd
    finally:
        os.close(fd)


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    """``lstat`` of ``name`` in the directory ``dir_fd``; ``None`` if it is missing."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def refuse_link(dir_fd: int, name: str, path: str | os.PathLike[str]) -> os.stat_result | None:
    """:func:`lstat_at`, raising :func:`link_refused` if ``name`` is a link."""
    st = lstat_at(dir_fd, name)
    if st is not None and stat.S_ISLNK(st.st_mode):
        raise link_refused(path, os.readlink(name, dir_fd=dir_fd))
    return st


def open_entry(dir_fd: int, name: str) -> int | None:
    """A descriptor of ``name`` itself in ``dir_fd`` (``O_PATH`` where there is one), for :func:`set_attributes`;
    ``None`` if it is a link (never what the link points to) or gone. The caller closes it."""
    flags = (_O_PATH or os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY) | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # without O_PATH, O_NOFOLLOW refuses a link
            return None
        raise
    if stat.S_ISLNK(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def open_nofollow(dir_fd: int, name: str, path: str | os.PathLike[str]) -> int:
    """:func:`open_entry`, but a link is refused in words (and a missing file is ``FileNotFoundError``)."""
    fd = open_entry(dir_fd, name)
    if fd is None:
        st = lstat_at(dir_fd, name)
        if st is not None and stat.S_ISLNK(st.st_mode):
            raise link_refused(path, os.readlink(name, dir_fd=dir_fd))
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
    return fd


def set_attributes(fd: int, mode: int | None = None, uid: int = -1, gid: int = -1) -> None:
    """``chmod``/``chown`` the very file ``fd`` refers to (also an ``O_PATH`` descriptor: through
    ``/proc/self/fd``, which names the open file, not a path to resolve again)."""
    try:
        if uid != -1 or gid != -1:
            os.fchown(fd, uid, gid)
        if mode is not None:
            os.fchmod(fd, mode)
    except OSError as exc:
        if exc.errno != errno.EBADF:  # EBADF: an O_PATH descriptor
            raise
        if uid != -1 or gid != -1:
            os.chown(_PROC_FD / str(fd), uid, gid)
        if mode is not None:
            os.chmod(_PROC_FD / str(fd), mode)


def read_nofollow(dir_fd: int, name: str, path: str | os.PathLike[str]) -> bytes | None:
    """The bytes of the regular file ``name`` in ``dir_fd`` (a link is refused); ``None`` if it is missing or
    not a regular file."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise link_refused(path, os.readlink(name, dir_fd=dir_fd)) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read()
    finally:
        os.close(fd)


def _fsync_dir(dir_fd: int) -> None:
    with contextlib.suppress(OSError):
        os.fsync(dir_fd)


def remove_leftovers(target: Path, dir_fd: int | None = None) -> None:
    """Remove temporary files of ``target`` left by a writer that was killed (nobody holds their lock)."""
    prefix, own = f".{target.name}.", dir_fd is None
    with contextlib.suppress(OSError):
        fd = open_dir(target.parent) if dir_fd is None else dir_fd
        try:
            for candidate in os.listdir(fd):
                if not (candidate.startswith(prefix) and candidate.endswith(".tmp")):
                    continue
                try:
                    held = os.open(candidate, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                except OSError:
                    continue
                try:
                    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # held: a live writer's file
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(candidate, dir_fd=fd)
                finally:
                    os.close(held)
        finally:
            if own:
                os.close(fd)


class AtomicFile:
    """A temporary file beside ``target`` that replaces it only on :meth:`commit`.

    Between writing and committing, the temporary file can be read back (:attr:`temp_path`) and checked; leaving
    the ``with`` block without committing (an exception, or a decision not to) removes it and leaves ``target``
    as it was. An ``OSError`` inside the block or in the commit becomes a :class:`StepFailed` naming the target.

    The directory is opened once, without following a link the app could have planted (:func:`open_dir`); the
    temporary file, the rename and the removal all happen in that directory. A link at ``target`` itself is
    refused, never followed nor replaced.
    """

    def __init__(self, target: str | os.PathLike[str], mode: int = 0o644, owner: tuple[int, int] | None = None):
        self.target = Path(target)
        self.mode, self.owner = mode, owner
        self.committed = False
        self.dir_fd = -1

    def __enter__(self) -> AtomicFile:
        try:
            self.dir_fd = open_dir(self.target.parent)
            refuse_link(self.dir_fd, self.target.name, self.target)
        except OSError as exc:
            self._close_dir()
            raise write_error(self.target, exc) from None
        except BaseException:
            self._close_dir()
            raise
        remove_leftovers(self.target, self.dir_fd)
        try:
            fd, self.temp_name = self._create_temp()
        except OSError as exc:
            self._close_dir()
            raise write_error(self.target, exc) from None
        where = _PROC_FD / str(self.dir_fd)  # the directory we hold, whatever its path now leads to
        self.temp_path = (where if where.is_dir() else self.target.parent) / self.temp_name
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.fchmod(fd, self.mode)
            if self.owner is not None:
                os.fchown(fd, *self.owner)
        except BaseException as exc:
            os.close(fd)
            self._remove_temp()
            self._close_dir()
            if isinstance(exc, OSError):
                raise write_error(self.target, exc) from None
            raise
        self.handle: IO[bytes] = os.fdopen(fd, "wb")
        return self

    def _create_temp(self) -> tuple[int, str]:
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        for _ in range(100):
            name = f".{self.target.name}.{secrets.token_hex(4)}.tmp"
            try:
                return os.open(name, flags, 0o600, dir_fd=self.dir_fd), name
            except FileExistsError:
                continue
        raise FileExistsError(errno.EEXIST, "no free temporary name", str(self.target))

    def commit(self, exclusive: bool = False) -> None:
        """Publish the file: fsync, then rename over the target (or hard-link: never replace, if ``exclusive``).

        A failure raises :class:`StepFailed` (``FileExistsError`` stays itself for ``exclusive``) and leaves the
        temporary file to :meth:`__exit__`, which removes it."""
        name, at = self.target.name, self.dir_fd
        try:
            self.handle.flush()
            os.fsync(self.handle.fileno())
            self.handle.close()
            if exclusive:
                os.link(self.temp_name, name, src_dir_fd=at, dst_dir_fd=at, follow_symlinks=False)
                self._remove_temp()
            else:
                os.replace(self.temp_name, name, src_dir_fd=at, dst_dir_fd=at)  # over a link: the link goes
        except FileExistsError:
            raise
        except OSError as exc:
            raise write_error(self.target, exc) from None
        self.committed = True
        _fsync_dir(at)

    def _remove_temp(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.temp_name, dir_fd=self.dir_fd)

    def _close_dir(self) -> None:
        if self.dir_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.dir_fd)
            self.dir_fd = -1

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
            self._close_dir()
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
    """Create ``path``'s missing directories (mode 0777 less the umask: 0755 by default), or fail in words; a
    link on the way is followed only where :func:`open_dir` allows."""
    try:
        os.close(open_dir(path.parent, create=True))
    except OSError as exc:
        raise StepFailed(f"{describe(exc.filename or path.parent, exc)} (creating the directory of {path.name})") \
            from None
