"""The ``files`` step: directories and files with their mode and owner, created atomically, idempotent.

.. code-block:: yaml

    - name: permissions
      files:
        dirs:
          - {path: /data/uploads, mode: "0777"}
          - {path: /data/logs, mode: "0755", owner: "1000:1000"}
          - {path: /bitnami/postgresql, owner: "1001:1001", recursive: true}   # as chown -R
        files:
          - {path: /data/logs/app.log, mode: "0666"}
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import Field

from prefect_init.errors import StepFailed
from prefect_init.runtime.atomic import (
    atomic_writer,
    open_entry,
    open_nofollow,
    opened_dir,
    read_nofollow,
    refuse_link,
    set_attributes,
    write_error,
)
from prefect_init.runtime.context import RunContext
from prefect_init.spec.model import Mode, Owner, StepBase, StrictModel
from prefect_init.words import plural


class DirEntry(StrictModel):
    path: str
    mode: Mode | None = None
    owner: Owner | None = None
    recursive: bool = False
    """``mode`` and ``owner`` also on everything under the directory, as ``chmod -R`` / ``chown -R`` set them
    (what a volume already holds included); symbolic links are left alone, never followed."""


class FileEntry(StrictModel):
    path: str
    mode: Mode | None = None
    owner: Owner | None = None
    content: str | None = None
    """Created with this content if missing; replaced (atomically) if it differs."""


class FilesSpec(StrictModel):
    dirs: list[DirEntry] = Field(default_factory=list)
    files: list[FileEntry] = Field(default_factory=list)


class Step(StepBase):
    kind = "files"
    files: FilesSpec

    def describe(self) -> str:
        return f"files: {plural(len(self.files.dirs), 'dir')}, {plural(len(self.files.files), 'file')}"


def resolve_owner(owner: str) -> tuple[int, int]:
    """``"1000:1000"``, ``"1000"``, ``"app:app"`` or ``"app"`` -> (uid, gid); -1 keeps the current one."""
    user, _, group = owner.partition(":")
    try:
        uid = int(user) if user.isdigit() else pwd.getpwnam(user).pw_uid
        if group:
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
        else:
            gid = -1 if user.isdigit() else pwd.getpwnam(user).pw_gid
    except KeyError:
        raise StepFailed(f"owner {owner!r}: no such user or group on this machine (use numeric uid:gid)") from None
    return uid, gid


def _chown_error(path: str | os.PathLike[str], owner: str | None) -> StepFailed:
    return StepFailed(f"{path}: cannot change owner to {owner} as uid {os.getuid()} "
                      "(run the init container as root, or give it CAP_CHOWN)")


def _other_names(st: os.stat_result) -> bool:
    """Whether a file that is not a directory has another hard link: another name of the same file, which may lie
    anywhere on the volume's file system (a rendered secret beside the volume, a file of the image on the same
    overlay). A mode or an owner set through one name is the file's, under every name."""
    return not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1


def _hard_link_refused(path: Path, st: os.stat_result) -> StepFailed:
    return StepFailed(f"{path} has {st.st_nlink} hard links: another name of the same file may lie outside the "
                      "volume, and its mode and owner would change too; prefect-init never changes the mode or "
                      "owner of a file with more than one name: remove the other names, or give a file of its own")


def _apply(fd: int, path: Path, mode: int | None, owner: str | None, changes: list[str]) -> None:
    """``mode`` and ``owner`` on the very file ``fd`` was opened on (never through a link, never on a file with
    another hard link)."""
    st = os.fstat(fd)
    if owner is not None:
        uid, gid = resolve_owner(owner)
        if (uid != -1 and st.st_uid != uid) or (gid != -1 and st.st_gid != gid):
            if _other_names(st):
                raise _hard_link_refused(path, st)
            try:
                set_attributes(fd, uid=uid, gid=gid)
            except PermissionError:
                raise _chown_error(path, owner) from None
            changes.append(f"owner {owner} {path}")
    if mode is not None and stat.S_IMODE(st.st_mode) != mode:
        if _other_names(st):
            raise _hard_link_refused(path, st)
        set_attributes(fd, mode)
        changes.append(f"mode {mode:04o} {path}")


def _apply_below(top_fd: int, top: Path, mode: int | None, owner: str | None, changes: list[str]) -> None:
    """``mode`` and ``owner`` on every directory and file under ``top`` that differs (``-R``): one line for all
    of them, however many (a volume may hold millions); symbolic links are not touched nor followed: the walk
    goes by descriptors, each entry opened with ``O_NOFOLLOW``. A directory that cannot be read fails
    the step (``chown -R`` would say so too)."""
    uid, gid = resolve_owner(owner) if owner is not None else (-1, -1)
    what = " and ".join(x for x in (f"owner {owner}" if owner else "", f"mode {mode:04o}" if mode is not None
                                    else "") if x)

    def unreadable(where: Path, exc: OSError) -> StepFailed:
        return StepFailed(f"{where}: cannot read it to set {what} on what it holds ({exc.strerror})")

    changed = linked = 0
    levels: list[tuple[int, Path, Iterator[str]]] = []

    def enter(fd: int, where: Path) -> None:
        try:
            names = sorted(os.listdir(fd))
        except OSError as exc:
            os.close(fd)
            raise unreadable(where, exc) from None
        levels.append((fd, where, iter(names)))

    enter(os.dup(top_fd), top)
    try:
        while levels:
            dir_fd, directory, names = levels[-1]
            name = next(names, None)
            if name is None:
                os.close(levels.pop()[0])
                continue
            where = directory / name
            fd = open_entry(dir_fd, name)
            if fd is None:
                continue  # a link (neither it nor what it points to is touched), or removed meanwhile
            try:
                st = os.fstat(fd)
                done = False
                if _other_names(st) and ((uid != -1 and st.st_uid != uid) or (gid != -1 and st.st_gid != gid) or
                                         (mode is not None and stat.S_IMODE(st.st_mode) != mode)):
                    linked += 1  # another name may lie outside the tree: left alone, as a symbolic link is
                    continue
                if (uid != -1 and st.st_uid != uid) or (gid != -1 and st.st_gid != gid):
                    try:
                        set_attributes(fd, uid=uid, gid=gid)
                    except PermissionError:
                        raise _chown_error(where, owner) from None
                    done = True
                if mode is not None and stat.S_IMODE(st.st_mode) != mode:
                    set_attributes(fd, mode)
                    done = True
                changed += done
            finally:
                os.close(fd)
            if stat.S_ISDIR(st.st_mode):
                try:
                    child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
                except OSError as exc:
                    if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                        continue  # removed or replaced (by a link) meanwhile: not followed
                    raise unreadable(where, exc) from None
                enter(child, where)
    finally:
        for level in levels:
            os.close(level[0])
    if changed:
        changes.append(f"{what} under {top}: {changed} entr{'y' if changed == 1 else 'ies'} changed")
    if linked:
        changes.append(f"{what} under {top}: {plural(linked, 'file')} with another hard link left alone (another "
                       "name of the same file may lie outside the tree; set it by its own entry, with one name)")


def _target(ctx: RunContext, raw: str) -> Path:
    return Path(os.path.normpath(os.path.abspath(ctx.resolve(raw))))


def _ensure_dir(entry: DirEntry, ctx: RunContext, changes: list[str]) -> None:
    path = _target(ctx, entry.path)
    name = path.name or "."
    with opened_dir(path.parent, create=True) as parent:
        st = refuse_link(parent, name, path)
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise StepFailed(f"{path}: exists and is not a directory")
        if st is None:
            try:
                os.mkdir(name, 0o777, dir_fd=parent)
                changes.append(f"created {path}/")
            except FileExistsError:
                pass  # made meanwhile (another replica): opened below, without following a link
        try:
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        except OSError as exc:
            refuse_link(parent, name, path)
            if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                raise StepFailed(f"{path}: exists and is not a directory") from None
            raise OSError(exc.errno, exc.strerror, str(path)) from None
    try:
        _apply(fd, path, entry.mode, entry.owner, changes)
        if entry.recursive:
            _apply_below(fd, path, entry.mode, entry.owner, changes)
    finally:
        os.close(fd)


def _ensure_file(entry: FileEntry, ctx: RunContext, changes: list[str]) -> None:
    path = _target(ctx, entry.path)
    content = (entry.content or "").encode()
    mode = entry.mode if entry.mode is not None else 0o644
    with opened_dir(path.parent, create=True) as parent:
        st = refuse_link(parent, path.name, path)
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise StepFailed(f"{path}: exists and is not a regular file")
        if st is None:
            try:
                with atomic_writer(path, mode, exclusive=True) as handle:
                    handle.write(content)
                changes.append(f"created {path}")
            except FileExistsError:
                pass  # another replica created it between our check and our link: fine, apply mode below
        elif entry.content is not None and read_nofollow(parent, path.name, path) != content:
            with atomic_writer(path, stat.S_IMODE(st.st_mode) if entry.mode is None else mode) as handle:
                handle.write(content)
            changes.append(f"rewrote {path}")
        fd = open_nofollow(parent, path.name, path)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StepFailed(f"{path}: exists and is not a regular file")
        _apply(fd, path, entry.mode, entry.owner, changes)
    finally:
        os.close(fd)


def run(step: Step, ctx: RunContext) -> str:
    changes: list[str] = []
    try:
        for d in step.files.dirs:
            _ensure_dir(d, ctx, changes)
        for f in step.files.files:
            _ensure_file(f, ctx, changes)
    except OSError as exc:
        raise write_error(exc.filename or "files", exc) from None
    for change in changes:
        ctx.log.info(change)
    summary = f"{len(changes)} changes" if changes else "already in place"
    ctx.log.info(summary)
    return summary


def probe(step: Step, ctx: RunContext) -> Any:
    """For each path: whether it exists with the wanted type, mode and owner, and whether this user could make
    it so (a writable parent to create it, ownership to chmod it, root to chown it)."""
    from prefect_init.runtime.probe import CHANGE, OK, PROBLEM, Finding

    changes, problems = [], []
    root = os.geteuid() == 0

    def check(entry: DirEntry | FileEntry, is_dir: bool) -> None:
        path = _target(ctx, entry.path)
        try:  # a link run would refuse, on the way or at the path
            with opened_dir(path.parent) as held:
                refuse_link(held, path.name or ".", path)
        except StepFailed as exc:
            problems.append(str(exc))
            return
        except OSError:
            pass  # a directory missing on the way: said below
        if not path.exists():
            parent = next((p for p in path.parents if p.exists()), Path("/"))
            if os.access(parent, os.W_OK) or ctx.produced_by_ancestor(path):  # type: ignore[attr-defined]
                changes.append(f"create {path}{'/' if is_dir else ''}")
            else:
                problems.append(f"{path}: missing, and {parent} is not writable for this user")
            return
        if path.is_dir() != is_dir:
            problems.append(f"{path}: exists and is not a {'directory' if is_dir else 'regular file'}")
            return
        st = path.stat()
        if entry.mode is not None and stat.S_IMODE(st.st_mode) != entry.mode:
            if root or st.st_uid == os.geteuid():
                changes.append(f"mode {entry.mode:04o} {path}")
            else:
                problems.append(f"{path}: mode {stat.S_IMODE(st.st_mode):04o}, wanted {entry.mode:04o}, and this "
                                f"user (uid {os.geteuid()}) does not own it")
        if entry.owner is not None:
            try:
                uid, gid = resolve_owner(entry.owner)
            except StepFailed as exc:
                problems.append(str(exc))
                return
            if (uid != -1 and st.st_uid != uid) or (gid != -1 and st.st_gid != gid):
                (changes if root else problems).append(
                    f"owner {entry.owner} {path}" if root else f"{path}: owner {st.st_uid}:{st.st_gid}, wanted "
                    f"{entry.owner}, and only root may chown")
        if not is_dir and isinstance(entry, FileEntry) and entry.content is not None and \
                path.read_bytes() != entry.content.encode():
            changes.append(f"rewrite {path}")

    for d in step.files.dirs:
        check(d, True)
    for f in step.files.files:
        check(f, False)
    if problems:
        return Finding(PROBLEM, problems)
    return Finding(CHANGE, changes) if changes else Finding(OK, ["already in place"])
