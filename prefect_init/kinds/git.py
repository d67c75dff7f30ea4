"""The ``git`` step: a repository at a ref, checked out where the build expects it.

.. code-block:: yaml

    - name: clone
      git:
        repo: https://github.com/myorg/mysite.git
        ref: main                    # a branch, a tag or a commit
        dest: /repo
        depth: 1                     # shallow; omit for the full history
        username: x-access-token     # with password: HTTP basic auth, sent in the environment, never in argv
        password: {file: /secrets/git-token}

A new checkout is made in a temporary directory beside ``dest`` and renamed into place, so a failed clone leaves
nothing behind. An existing checkout of the same repository is fetched and checked out again (idempotent); a
``dest`` holding anything else is an error. Network failures are retried; an unknown ref, a missing repository
or refused credentials are final. Uses the ``git`` program of the image.

Hardened (docs/hardening/git.md): ``repo``, ``ref`` and ``sparse`` never start with ``-`` and follow
``--end-of-options``; git may use https, ssh and git, plus http or file only when ``repo`` is one
(``GIT_ALLOW_PROTOCOL``, whatever the environment says); the password goes to ``repo``'s origin only and no
redirect is followed with it; no hook and no fsmonitor runs; an existing checkout whose configuration sets what
this step never writes is refused.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, model_validator

from prefect_init.errors import RetryableError, StepFailed
from prefect_init.runtime.atomic import make_parent, write_error
from prefect_init.runtime.context import RunContext
from prefect_init.runtime.redaction import redact, register_secret
from prefect_init.runtime.values import resolve_value
from prefect_init.spec.model import FromFile, StepBase, StrictModel

FINAL = ("couldn't find remote ref", "repository not found", "authentication failed", "not found",
         "invalid username or password", "does not appear to be a git repository", "permission denied",
         "not our ref", "unadvertised object", "strange hostname", "strange pathname")


VOLUME_FULL_OR_READ_ONLY = {"no space left on device": "no space left on device (the volume is full)",
                            "read-only file system": "read-only file system (the volume is mounted read-only)",
                            "disk quota exceeded": "disk quota exceeded (the volume's quota is used up)"}
"""git's own words for a volume that cannot take the checkout: final, whatever the command."""


HARDENED = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false")
"""On every git call: no hook runs (a checkout's own, a template's, a planted one) and no fsmonitor command."""


def not_an_option(value: str) -> str:
    """A value the step passes to git: refused if git could read it as an option."""
    if value.startswith("-"):
        raise ValueError("starts with '-': a value here is never an option to git (check the value, or the "
                         "variable or output it comes from)")
    return value


Value = Annotated[str, AfterValidator(not_an_option)]

REF_REFUSED = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{")
"""What git's ``check-ref-format`` refuses in a branch or tag name, and a commit's hex never holds: with it, the
value given to ``git fetch origin <ref>`` is a refspec (``main:refs/heads/x`` writes a ref of its naming into the
checkout, ``+a:b`` forces one), a glob (``refs/heads/*``) or a range (``a..b``, ``main@{1}``)."""


def a_ref(value: str) -> str:
    """A ``ref``: a branch, a tag or a commit, never a refspec, a glob or a range (:data:`REF_REFUSED`)."""
    found = REF_REFUSED.search(value)
    if found:
        text = found.group()
        shown = "a space or a control character" if len(text) == 1 and (ord(text) <= 0x20 or ord(text) == 0x7f) \
            else repr(text)
        raise ValueError(f"holds {shown}: a refspec, a glob or a range, never a branch, a tag or a commit (check "
                         "the value, or the variable or output it comes from)")
    return value


Ref = Annotated[str, AfterValidator(not_an_option), AfterValidator(a_ref)]


REDIRECTED = re.compile(r"returned error: 30[1278]\b")
"""git's words for a redirect it did not follow (``http.followRedirects=false``, set with a password)."""


SSH_REMOTE = re.compile(r"^(ssh://|git\+ssh://|[A-Za-z0-9._-]+@[A-Za-z0-9._-]+:(?!//))")
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


class GitSpec(StrictModel):
    repo: Value
    ref: Ref = "HEAD"
    dest: str
    depth: int | None = Field(default=None, ge=1)
    username: str | None = None
    password: str | FromFile | None = None
    ssh_key: FromFile | None = None
    known_hosts: FromFile | None = None
    submodules: bool = False
    sparse: list[Value] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _ssh(self) -> GitSpec:
        if SSH_REMOTE.match(self.repo) and self.known_hosts is None:
            raise ValueError("an ssh remote needs known_hosts: {file: ...} (host keys are always checked)")
        return self


class Step(StepBase):
    kind = "git"
    git: GitSpec

    def describe(self) -> str:
        return f"git: {redact(self.git.repo)}@{self.git.ref} -> {self.git.dest}"


def _git(args: list[str], ctx: RunContext, env: dict[str, str], what: str, cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run(["git", *HARDENED, *args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=max(1.0, ctx.remaining()), stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise StepFailed("git: the git program is not installed in this image") from None
    except subprocess.TimeoutExpired:
        raise RetryableError(f"{what}: still running at the deadline") from None
    if proc.returncode != 0:
        if "host key verification failed" in proc.stderr.lower():
            raise StepFailed(f"{what}: ssh host key verification failed: the server's key is not the one in "
                             "known_hosts (check known_hosts, or whether the server changed)")
        message = redact(" ".join(proc.stderr.strip().splitlines()[-3:]) or f"exit {proc.returncode}")
        for marker, words in VOLUME_FULL_OR_READ_ONLY.items():
            if marker in message.lower():
                raise StepFailed(f"{what}: {words} ({message})")
        if "transport '" in message and "not allowed" in message:
            raise StepFailed(f"{what}: {message} (this step speaks https, ssh and git, and http or file only when "
                             "the spec's own repository is one: check the repository's or a submodule's URL)")
        dubious = [line for line in proc.stderr.splitlines() if "dubious ownership" in line]
        if dubious:  # git's own advice (safe.directory) would trust the other user's hooks and configuration
            raise StepFailed(f"{what}: {redact(dubious[0].strip())}: git refuses a repository owned by another user; "
                             "remove it for a fresh checkout, or run this step as its owner")
        if REDIRECTED.search(message):
            raise StepFailed(f"{what}: {message} (the server answers with a redirect, which this step does not "
                             "follow when it sends a password, so the password never goes to another server: "
                             "write the URL the redirect names in repo)")
        if any(marker in message.lower() for marker in FINAL):
            raise StepFailed(f"{what}: {message}")
        raise RetryableError(f"{what}: {message}")
    return proc.stdout.strip()


def is_local(repo: str) -> bool:
    """Is ``repo`` a repository on this machine's disk (file:// or a path), as git reads it?"""
    if repo.startswith("file://"):
        return True
    if "://" in repo or "::" in repo:
        return False
    head, colon, _ = repo.partition(":")
    return not colon or "/" in head  # host:path (scp-like) is ssh; a / before the first : is a path


def allowed_protocols(repo: str) -> str:
    """``GIT_ALLOW_PROTOCOL`` for ``repo`` and its submodules: https, ssh and git, plus http when the spec's own
    repository is http, plus file only when it is local: a remote repository's submodule never reads this disk."""
    allowed = ["https", "ssh", "git"]
    if repo.lower().startswith("http://"):
        allowed.append("http")
    if is_local(repo):
        allowed.append("file")
    return ":".join(allowed)


def credential_scope(repo: str) -> str | None:
    """The origin (``scheme://host:port/``) the password is sent to: git's urlmatch config sends it to this
    server only, never to a submodule or anything else on another host, port or scheme; None when ``repo`` is not
    an http(s) URL (the password has no use there)."""
    try:
        parts = urlsplit(repo)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme.lower()}://{host}{f':{port}' if port is not None else ''}/"


def _add_config(env: dict[str, str], key: str, value: str) -> None:
    """One more ``GIT_CONFIG_KEY_n``/``VALUE_n`` after those the environment already holds."""
    count = env.get("GIT_CONFIG_COUNT", "0")
    index = int(count) if count.isdigit() else 0
    env.update({"GIT_CONFIG_COUNT": str(index + 1), f"GIT_CONFIG_KEY_{index}": key,
                f"GIT_CONFIG_VALUE_{index}": value})


def _environment(spec: GitSpec, ctx: RunContext, key_file: str | None = None) -> dict[str, str]:
    # our own protocol list, whatever the environment said: it cannot widen it (ext:: runs a command)
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true",
           "GIT_ALLOW_PROTOCOL": allowed_protocols(spec.repo)}
    if spec.known_hosts is not None:
        known = ctx.resolve(spec.known_hosts.file)
        if not known.is_file():
            raise StepFailed(f"git: known_hosts {known}: no such file (is the volume mounted?)")
        ssh = ["ssh", "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}",
               "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
        if key_file is not None:
            ssh += ["-i", key_file, "-o", "IdentitiesOnly=yes"]
        env["GIT_SSH_COMMAND"] = shlex.join(ssh)
    if spec.password is not None:
        password = resolve_value(spec.password, ctx, "git password")
        basic = base64.b64encode(f"{spec.username or 'x-access-token'}:{password}".encode()).decode()
        register_secret(password)
        register_secret(basic)
        # config from the environment (git >= 2.31): the credential never appears in argv or .git/config; as
        # http.<origin>.extraHeader, git sends it to the repository's own server only
        scope = credential_scope(spec.repo)
        if scope is not None:
            _add_config(env, f"http.{scope}.extraHeader", f"Authorization: Basic {basic}")
            # git sends its extra headers to wherever a redirect led it (the new base URL): never follow one
            _add_config(env, "http.followRedirects", "false")
    return env


def _fetch_and_checkout(spec: GitSpec, repo_dir: Path, ctx: RunContext, env: dict[str, str]) -> str:
    shown = f"git fetch {redact(spec.repo)} {spec.ref}"
    depth = [f"--depth={spec.depth}"] if spec.depth else []
    if spec.sparse:  # only these paths are checked out
        _git(["sparse-checkout", "set", "--no-cone", "--end-of-options", *spec.sparse], ctx, env,
             "git sparse-checkout", cwd=repo_dir)
    _git(["fetch", "--quiet", *depth, "--end-of-options", "origin", spec.ref], ctx, env, shown, cwd=repo_dir)
    _git(["checkout", "--quiet", "--force", "--detach", "FETCH_HEAD"], ctx, env, "git checkout", cwd=repo_dir)
    commit = _git(["rev-parse", "HEAD"], ctx, env, "git rev-parse", cwd=repo_dir)
    if FULL_SHA.match(spec.ref) and commit != spec.ref:
        raise StepFailed(f"git: checked out {commit}, not the commit {spec.ref} the spec pins")
    if spec.submodules:
        # same depth; the password reaches a submodule on the repository's own server only, GIT_SSH_COMMAND
        # every ssh one; GIT_ALLOW_PROTOCOL lets a local repository's submodules be local paths, never a remote's
        _git(["submodule", "update", "--init", "--recursive", "--quiet", *depth], ctx, env,
             "git submodule update", cwd=repo_dir)
    return commit


def _init(spec: GitSpec, directory: Path, ctx: RunContext, env: dict[str, str]) -> str:
    _git(["init", "--quiet", "--end-of-options", str(directory)], ctx, env, "git init")
    _git(["remote", "add", "--end-of-options", "origin", spec.repo], ctx, env, "git remote add", cwd=directory)
    return _fetch_and_checkout(spec, directory, ctx, env)


@contextlib.contextmanager
def _git_env(spec: GitSpec, ctx: RunContext) -> Iterator[dict[str, str]]:
    """git's environment for this attempt; an ssh key is copied to a 0600 temporary file, removed afterwards."""
    if spec.ssh_key is None:
        yield _environment(spec, ctx)
        return
    key = resolve_value(spec.ssh_key, ctx, "git ssh_key")
    fd, key_file = tempfile.mkstemp(prefix="prefect-init-ssh-", suffix=".key")
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (key.rstrip("\n") + "\n").encode())
        os.close(fd)
        yield _environment(spec, ctx, key_file)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(key_file)


def _refuse_options(spec: GitSpec) -> None:
    """The model refuses these already; a step built without validation is refused here, before git runs."""
    for field, value in [("repo", spec.repo), ("ref", spec.ref),
                         *((f"sparse[{i}]", path) for i, path in enumerate(spec.sparse or []))]:
        try:
            not_an_option(value)
            if field == "ref":
                a_ref(value)
        except ValueError as exc:
            raise StepFailed(f"git.{field}: {exc}") from None


def run(step: Step, ctx: RunContext) -> str:
    """Check the repository out at ``ref``."""
    _refuse_options(step.git)
    with _git_env(step.git, ctx) as env:
        return _checkout(step.git, ctx, env)


CHECKOUT_CONFIG = re.compile(
    r"core\.(repositoryformatversion|filemode|bare|logallrefupdates|ignorecase|precomposeunicode|symlinks"
    r"|sparsecheckout|sparsecheckoutcone)|extensions\.worktreeconfig|remote\.origin\.(url|fetch)"
    r"|submodule\..+\.(url|active)|branch\..+\.merge")
"""The configuration keys this step's git calls write into a checkout (and a submodule's): an existing checkout
whose configuration sets any other (a command in core.fsmonitor or remote.origin.uploadpack, an include, a url
rewrite, a filter) was altered by something else, and is refused rather than trusted."""


def _config_entries(path: Path, ctx: RunContext, env: dict[str, str]) -> list[tuple[str, str]]:
    """The entries of one configuration file, as git parses it (includes named, never followed)."""
    listed = _git(["config", "--file", str(path), "--no-includes", "--list", "-z"], ctx, env,
                  f"git config {path}", cwd=path.parent)
    return [(key, value) for key, _, value in (entry.partition("\n") for entry in listed.split("\0") if entry)]


def _check_existing(dest: Path, ctx: RunContext, env: dict[str, str]) -> None:
    """An existing checkout runs nothing of its own: its .git is a directory of ours, every configuration file
    in it (the checkout's and each submodule's) sets only keys this step writes, a submodule's work tree is inside
    ``dest`` and points back to its own git directory."""
    git_dir = dest / ".git"
    fresh = f"remove {dest} for a fresh checkout"
    if git_dir.is_symlink() or not git_dir.is_dir():
        raise StepFailed(f"{dest}: .git is not a directory (a link or a git file): not a checkout this step made; "
                         f"{fresh}")
    top = dest.resolve()
    for directory, subdirectories, files in os.walk(git_dir):
        here = Path(directory)
        if any((here / name).is_symlink() for name in subdirectories):
            raise StepFailed(f"{dest}: {here.relative_to(dest)} holds a link to a directory; {fresh}")
        if "HEAD" not in files or "config" not in files:
            continue
        if "commondir" in files:
            raise StepFailed(f"{dest}: {here.relative_to(dest)}/commondir borrows another repository; {fresh}")
        urls = 0
        for name in ("config", "config.worktree"):
            if name not in files:
                continue
            for key, value in _config_entries(here / name, ctx, env):
                where = (here / name).relative_to(dest)
                if key == "core.worktree" and here != git_dir:  # a submodule's: its own work tree in dest
                    work_tree = (here / value).resolve()
                    if not work_tree.is_relative_to(top) or not _points_back(work_tree, here):
                        raise StepFailed(f"{dest}: {where}: sets core.worktree to a work tree outside the checkout "
                                         f"or whose .git names another repository; {fresh}")
                    continue
                if key.startswith("branch.") and key.endswith(".remote") and value == "origin":
                    continue
                urls += key == "remote.origin.url"
                if not CHECKOUT_CONFIG.fullmatch(key) or urls > 1:
                    raise StepFailed(f"{dest}: {where}: sets {key}, which this step never writes (what shares the "
                                     f"volume may have altered the checkout); {fresh}")


def _points_back(work_tree: Path, git_dir: Path) -> bool:
    """Is ``work_tree``'s .git absent, or a git file naming ``git_dir``?"""
    dot_git = work_tree / ".git"
    if not dot_git.exists() and not dot_git.is_symlink():
        return True
    if dot_git.is_symlink() or not dot_git.is_file():
        return False
    try:
        text = dot_git.read_text(encoding="utf-8", errors="replace")[:4096].strip()
    except OSError:
        return False
    return text.startswith("gitdir: ") and (work_tree / text.removeprefix("gitdir: ")).resolve() == git_dir.resolve()


def _checkout(spec: GitSpec, ctx: RunContext, env: dict[str, str]) -> str:
    dest = ctx.resolve(spec.dest)
    if dest.is_dir() and os.path.lexists(dest / ".git"):
        _check_existing(dest, ctx, env)
        origin = _git(["remote", "get-url", "origin"], ctx, env, "git remote", cwd=dest)
        if origin != spec.repo:
            raise StepFailed(f"{dest}: a checkout of another repository ({redact(origin)})")
        commit = _fetch_and_checkout(spec, dest, ctx, env)
        ctx.log.info(f"{dest}: updated to {spec.ref} ({commit[:12]})")
        ctx.output("revision", commit)
        ctx.output("ref", spec.ref)
        return f"updated to {commit[:12]}"
    if dest.exists():
        if not dest.is_dir() or any(dest.iterdir()):
            raise StepFailed(f"{dest}: exists, is not empty and is not a git checkout")
        # an empty directory, typically an emptyDir mount point (it cannot be renamed over): work in place;
        # a failed attempt leaves a .git of the same origin, which the next attempt fetches again
        commit = _init(spec, dest, ctx, env)
    else:
        make_parent(dest)
        try:
            work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
        except OSError as exc:
            raise write_error(dest, exc) from None
        try:
            commit = _init(spec, work, ctx, env)
            work.rename(dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(work)
    ctx.log.info(f"{dest}: {redact(spec.repo)} at {spec.ref} ({commit[:12]})")
    ctx.output("revision", commit)
    ctx.output("ref", spec.ref)
    return f"checked out {commit[:12]}"


def probe(step: Step, ctx: RunContext) -> Any:
    """``git ls-remote`` for the ref, with the step's credentials (an ssh key too); nothing is fetched."""
    from prefect_init.runtime.probe import OK, PROBLEM, Finding

    spec = step.git
    _refuse_options(spec)
    # run outside any repository: the working directory's own .git/config (a credential helper) is never read
    repo = os.path.abspath(spec.repo) if is_local(spec.repo) and not spec.repo.startswith("file://") else spec.repo
    shown = f"git ls-remote {redact(spec.repo)}"
    with _git_env(spec, ctx) as env, tempfile.TemporaryDirectory(prefix="prefect-init-git-") as nowhere:
        if FULL_SHA.match(spec.ref):
            _git(["ls-remote", "--end-of-options", repo, "HEAD"], ctx, env, shown, cwd=Path(nowhere))
            return Finding(OK, [f"{redact(spec.repo)} answers; commit {spec.ref[:12]} is checked at checkout"])
        found = _git(["ls-remote", "--end-of-options", repo, spec.ref], ctx, env, shown, cwd=Path(nowhere))
    if not found:
        return Finding(PROBLEM, [f"{redact(spec.repo)}: no ref {spec.ref!r} (a branch, a tag or a full sha)"])
    return Finding(OK, [f"{spec.ref} is {found.split()[0][:12]}"])
