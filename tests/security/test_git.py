"""Attacks on the ``git`` step, against real git processes: values that try to become options, transports that run
commands, a deploy token that a submodule tries to collect, and a checkout in a shared volume whose ``.git`` was
planted with hooks or configuration. Every payload is a marker file (``touch``), never a destructive command.

The HTTP git servers are "dumb" ones (files of a bare repository after ``git update-server-info``) on 127.0.0.1:
enough for git to fetch, and each records the ``Authorization`` header of every request it answers."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from prefect_init.errors import StepError, StepFailed
from prefect_init.kinds import git as git_kind
from prefect_init.run.reporter import PlainReporter
from prefect_init.runtime.context import RunContext
from tests.helpers import clean_env, run_cli
from tests.helpers import git as _git

OPTION = "--upload-pack=touch {marker};git-upload-pack"
"""An option that makes git run a command (through a shell) instead of upload-pack, for any local transport."""


def _write(tmp_path: Path, steps: list[dict[str, Any]]) -> Path:
    spec = tmp_path / "init.yaml"  # JSON is YAML: ${VAR} in a string is expanded as in any spec
    spec.write_text(json.dumps({"version": 1, "name": "clone", "status_file": "status.json", "steps": steps}))
    return spec


def _run(tmp_path: Path, git: dict[str, Any], retries: int = 0, before: list[dict[str, Any]] | None = None,
         env: dict[str, str] | None = None) -> tuple[int, str, str, int]:
    """Run one git step (after ``before``); exit code, its error, stderr and its attempts (0: never started)."""
    steps = [*(before or []), {"name": "clone", "retries": retries, "retry_delay": "10ms", "git": git}]
    if before:
        steps[-1]["after"] = [step["name"] for step in before]
    result = run_cli("run", str(_write(tmp_path, steps)), env=clean_env(**(env or {})), timeout=60)
    status = tmp_path / "status.json"
    if not status.exists():  # refused before the run started (a spec error)
        return result.code, "", result.stderr, 0
    step = json.loads(status.read_text())["steps"][-1]
    return result.code, step.get("error", ""), result.stderr, step.get("attempts", 0)


# -- values never become options ---------------------------------------------------------------------------------


def test_a_ref_from_a_variable_is_refused_before_git_runs(tmp_path: Path, origin: Path) -> None:
    marker = tmp_path / "MARKER"
    code, _, stderr, attempts = _run(tmp_path, {"repo": f"file://{origin}", "ref": "${SITE_REF:-main}",
                                                "dest": "site"}, env={"SITE_REF": OPTION.format(marker=marker)})
    assert not marker.exists(), "the ref ran a command"
    assert code == 2 and attempts == 0, stderr
    assert "git.ref: starts with '-'" in stderr and "never an option" in stderr
    assert not (tmp_path / "site").exists()


def test_a_ref_from_an_output_is_a_final_error(tmp_path: Path, origin: Path) -> None:
    marker = tmp_path / "MARKER"
    pick = {"name": "pick", "command": ["sh", "-c", 'printf "ref=%s\\n" "$REF" > "$PREFECT_INIT_OUTPUT"'],
            "env": {"REF": OPTION.format(marker=marker)}}
    code, error, stderr, attempts = _run(tmp_path, {"repo": f"file://{origin}", "ref": "${steps.pick.ref}",
                                                    "dest": "site"}, retries=2, before=[pick])
    assert not marker.exists(), "the ref ran a command"
    assert code == 1 and attempts <= 1, stderr  # final: refused as the outputs are read in, never retried
    assert "starts with '-'" in error and "never an option" in error
    assert "Value error" not in error, error  # our validator's words, not pydantic's prefix


def _ctx(tmp_path: Path) -> RunContext:
    return RunContext("clone", time.monotonic() + 30, 30, threading.Event(), PlainReporter().logger_for("clone"),
                      tmp_path)


@pytest.mark.parametrize("field", ["repo", "ref", "sparse"])
def test_a_step_built_without_validation_is_refused_before_git_runs(tmp_path: Path, origin: Path, field: str) -> None:
    marker = tmp_path / "MARKER"
    values: dict[str, Any] = {"repo": f"file://{origin}", "ref": "main", "dest": "site"}
    values[field] = [OPTION.format(marker=marker)] if field == "sparse" else OPTION.format(marker=marker)
    step = git_kind.Step.model_construct(name="clone", git=git_kind.GitSpec.model_construct(**values))
    with pytest.raises(StepFailed, match=f"git.{field}.*starts with '-'"):
        git_kind.run(step, _ctx(tmp_path))
    assert not marker.exists() and not (tmp_path / "site").exists()


def test_git_reads_a_ref_after_the_end_of_its_options(tmp_path: Path, origin: Path) -> None:
    """The last safeguard alone, below the model's and run's refusals: git itself takes the ref as a ref."""
    marker = tmp_path / "MARKER"
    spec = git_kind.GitSpec.model_construct(repo=f"file://{origin}", ref=OPTION.format(marker=marker), dest="site")
    ctx = _ctx(tmp_path)
    (tmp_path / "site").mkdir()
    with git_kind._git_env(spec, ctx) as env, pytest.raises(StepError, match="invalid refspec"):
        git_kind._init(spec, tmp_path / "site", ctx, env)
    assert not marker.exists(), "the ref ran a command"


def test_a_repo_from_a_variable_is_refused_by_run_and_check_online(tmp_path: Path, origin: Path) -> None:
    marker = tmp_path / "MARKER"
    # the repository ls-remote would read once the option took the repo's place is the ref's
    spec = _write(tmp_path, [{"name": "clone", "git": {"repo": "${GIT_REPO}", "ref": f"file://{origin}",
                                                       "dest": "site"}}])
    env = clean_env(GIT_REPO=OPTION.format(marker=marker))
    for command in (["check", str(spec), "--online", "--timeout", "20s"], ["run", str(spec)]):
        result = run_cli(*command, env=env, timeout=60)
        assert not marker.exists(), f"{command[0]}: the repo ran a command"
        assert result.code == 2, result.output
        assert "git.repo: starts with '-'" in result.output


def test_check_online_reads_no_repository_of_its_working_directory(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    workdir = _repo(tmp_path / "workdir", {"f": "x"})  # the process's working directory, a checkout of the app's
    _git("config", "credential.helper", f"!touch '{marker}'; true", cwd=workdir)
    spec = _write(tmp_path, [{"name": "clone", "git": {"repo": "${GIT_REPO}", "ref": "main", "dest": "site",
                                                       "username": "bot", "password": "${TOKEN}"}}])
    with dumb_git(tmp_path, require="never this") as (url, seen):
        env = clean_env(GIT_REPO=f"{url}/site.git", TOKEN="t-5353", GIT_CONFIG_NOSYSTEM="1")
        subprocess.run(["git", "ls-remote", f"{url}/site.git"], cwd=workdir, env=env, capture_output=True,
                       timeout=30)
        assert marker.exists(), "git itself runs the helper from there (positive control)"
        marker.unlink()
        result = run_cli("check", str(spec), "--online", "--timeout", "20s", env=env, cwd=workdir, timeout=60)
    assert len(seen) >= 2, "both were answered with a 401"
    assert not marker.exists(), "the working directory's credential helper ran"
    assert result.code != 0 and "Authentication failed" in result.output, result.output


def test_a_sparse_path_from_a_variable_is_refused(tmp_path: Path, origin: Path) -> None:
    # --stdin would read the patterns from an empty standard input: a checkout of nothing that "succeeds"
    code, _, stderr, attempts = _run(tmp_path, {"repo": f"file://{origin}", "ref": "main", "dest": "site",
                                                "sparse": ["${SPARSE}"]}, env={"SPARSE": "--stdin"})
    assert code == 2 and attempts == 0, stderr
    assert "git.sparse[0]: starts with '-'" in stderr
    assert not (tmp_path / "site").exists()


def test_values_that_merely_contain_dashes_still_work(tmp_path: Path, origin: Path) -> None:
    _git("tag", "release-1--final", cwd=origin)
    (origin / "my-dir").mkdir()
    (origin / "my-dir" / "f.txt").write_text("x")
    _git("add", ".", cwd=origin)
    _git("commit", "-q", "-m", "dir", cwd=origin)
    _git("branch", "feature--x", cwd=origin)
    code, error, _, _ = _run(tmp_path, {"repo": f"file://{origin}", "ref": "feature--x", "dest": "site",
                                        "sparse": ["my-dir/"]})
    assert code == 0, error
    assert (tmp_path / "site" / "my-dir" / "f.txt").read_text() == "x"
    assert not (tmp_path / "site" / "index.html").exists()


# -- transports --------------------------------------------------------------------------------------------------


def test_the_ext_transport_runs_nothing_even_when_the_environment_allows_it(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    repo = f"ext::sh -c touch% {marker}"
    for env in ({}, {"GIT_ALLOW_PROTOCOL": "ext:file:https", "GIT_CONFIG_COUNT": "1",
                     "GIT_CONFIG_KEY_0": "protocol.ext.allow", "GIT_CONFIG_VALUE_0": "always"}):
        code, error, stderr, attempts = _run(tmp_path, {"repo": repo, "ref": "main", "dest": "site"}, retries=2,
                                             env=env)
        assert not marker.exists(), f"ext:: ran a command with {env}"
        assert code == 1 and attempts == 1, stderr
        assert "transport 'ext' not allowed" in error


@contextmanager
def dumb_git(root: Path, require: str | None = None) -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    """Serve ``root``'s bare repositories over dumb HTTP on 127.0.0.1; yield its base URL and the (path,
    Authorization) of every request. With ``require``, a request without that Authorization gets a 401."""
    seen: list[tuple[str, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            auth = self.headers.get("Authorization")
            seen.append((path, auth))
            target = (root / path.lstrip("/")).resolve()
            if require is not None and auth != require:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                body = b"who are you"
            elif target.is_relative_to(root) and target.is_file():
                self.send_response(200)
                body = target.read_bytes()
            else:
                self.send_response(404)
                body = b"no"
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def _bare(source: Path, into: Path) -> Path:
    """A bare copy of ``source`` at ``into``, ready for dumb HTTP."""
    _git("clone", "-q", "--bare", str(source), str(into), cwd=source.parent)
    _git("update-server-info", cwd=into)
    return into


def _repo(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir()
    _git("init", "-q", "-b", "main", cwd=directory)
    for name, text in files.items():
        (directory / name).write_text(text)
    _git("add", ".", cwd=directory)
    _git("commit", "-q", "-m", "init", cwd=directory)
    return directory


def _with_submodule(origin: Path, url: str, commit: str) -> None:
    """Add a submodule at vendor/lib pointing at ``url`` (its commit given, nothing fetched)."""
    (origin / ".gitmodules").write_text(f'[submodule "lib"]\n\tpath = vendor/lib\n\turl = {url}\n')
    _git("add", ".gitmodules", cwd=origin)
    _git("update-index", "--add", "--cacheinfo", f"160000,{commit},vendor/lib", cwd=origin)
    _git("commit", "-q", "-m", "submodule", cwd=origin)


def test_the_password_never_reaches_a_submodule_on_another_origin(tmp_path: Path, origin: Path) -> None:
    lib = _repo(tmp_path / "lib", {"lib.txt": "library\n"})
    main_root, other_root = tmp_path / "main-server", tmp_path / "other-server"
    main_root.mkdir()
    other_root.mkdir()
    token = tmp_path / "token"
    token.write_text("git-token-canary-5151\n")
    expected = "Basic " + base64.b64encode(b"bot:git-token-canary-5151").decode()
    _bare(lib, other_root / "lib.git")
    with dumb_git(other_root) as (other_url, other_seen), dumb_git(main_root, require=expected) as (main_url, seen):
        _with_submodule(origin, f"{other_url}/lib.git", _git("rev-parse", "HEAD", cwd=lib))
        _bare(origin, main_root / "site.git")
        code, _, stderr, _ = _run(tmp_path, {"repo": f"{main_url}/site.git", "ref": "main", "dest": "site",
                                                 "submodules": True, "username": "bot",
                                                 "password": {"file": str(token)}})
    assert code == 0, stderr
    assert (tmp_path / "site" / "vendor" / "lib" / "lib.txt").read_text() == "library\n"
    assert seen and all(auth == expected for _, auth in seen), "the repository itself still authenticates"
    assert other_seen, "the submodule's server was asked (positive control)"
    assert [auth for _, auth in other_seen if auth is not None] == [], "the token went to another origin"


@pytest.mark.parametrize("status", [301, 302, 307])
def test_the_password_never_follows_a_redirect_to_another_origin(tmp_path: Path, origin: Path, status: int) -> None:
    root = tmp_path / "server"
    root.mkdir()
    _bare(origin, root / "site.git")
    token = tmp_path / "token"
    token.write_text("git-token-canary-5252\n")
    expected = "Basic " + base64.b64encode(b"bot:git-token-canary-5252").decode()
    with dumb_git(root) as (other_url, other_seen), redirecting(other_url, status) as (url, seen):
        code, error, stderr, attempts = _run(tmp_path, {"repo": f"{url}/site.git", "ref": "main", "dest": "site",
                                                        "username": "bot", "password": {"file": str(token)}},
                                             retries=2)
    assert seen and seen[0][1] == expected, "the repository's own server got the password (positive control)"
    assert [auth for _, auth in other_seen if auth is not None] == [], "the token followed the redirect"
    assert code == 1 and attempts == 1, stderr
    assert "redirect" in error and "write the URL the redirect names in repo" in error


@contextmanager
def redirecting(to: str, status: int) -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    """A server on 127.0.0.1 that redirects every request to the same path under ``to``, recording each."""
    seen: list[tuple[str, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("Authorization")))
            self.send_response(status)
            self.send_header("Location", to + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_a_remote_repository_s_submodule_cannot_use_file_even_when_the_environment_allows_it(
        tmp_path: Path, origin: Path) -> None:
    secret = _repo(tmp_path / "secret", {"secret.txt": "local only\n"})
    root = tmp_path / "server"
    root.mkdir()
    _with_submodule(origin, f"file://{secret}", _git("rev-parse", "HEAD", cwd=secret))
    _bare(origin, root / "site.git")
    with dumb_git(root) as (url, seen):
        code, error, stderr, _ = _run(tmp_path, {"repo": f"{url}/site.git", "ref": "main", "dest": "site",
                                                 "submodules": True}, env={"GIT_ALLOW_PROTOCOL": "http:file"})
    assert seen, "the repository was fetched (positive control)"
    assert not (tmp_path / "site" / "vendor" / "lib" / "secret.txt").exists()
    assert code == 1 and "transport 'file' not allowed" in error, stderr


def test_a_local_repository_keeps_its_local_submodules(tmp_path: Path, origin: Path) -> None:
    lib = _repo(tmp_path / "lib", {"lib.txt": "library\n"})
    _with_submodule(origin, str(lib), _git("rev-parse", "HEAD", cwd=lib))
    code, error, _, _ = _run(tmp_path, {"repo": str(origin), "ref": "main", "dest": "site", "submodules": True})
    assert code == 0, error
    assert (tmp_path / "site" / "vendor" / "lib" / "lib.txt").read_text() == "library\n"


# -- an existing checkout in a shared volume ----------------------------------------------------------------------


def _hook(path: Path, marker: Path) -> None:
    path.write_text(f"#!/bin/sh\ntouch '{marker}'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_a_planted_hook_in_an_existing_checkout_does_not_run(tmp_path: Path, origin: Path) -> None:
    git = {"repo": f"file://{origin}", "ref": "main", "dest": "site"}
    code, error, _, _ = _run(tmp_path, git)
    assert code == 0, error
    marker = tmp_path / "MARKER"
    site = tmp_path / "site"
    for hook in ("post-checkout", "reference-transaction", "post-index-change"):
        _hook(site / ".git" / "hooks" / hook, marker)
    _git("checkout", "-q", "--detach", "HEAD", cwd=site)  # positive control: git itself runs the hook
    assert marker.exists()
    marker.unlink()
    (origin / "index.html").write_text("v3\n")
    _git("commit", "-q", "-am", "v3", cwd=origin)
    code, error, _, _ = _run(tmp_path, git)
    assert code == 0, error
    assert (site / "index.html").read_text() == "v3\n"
    assert not marker.exists(), "a hook of the existing checkout ran"


@pytest.mark.parametrize("key", ["core.fsmonitor", "remote.origin.uploadpack", "include.path", "core.sshCommand"])
def test_planted_configuration_in_an_existing_checkout_is_refused(tmp_path: Path, origin: Path, key: str) -> None:
    git = {"repo": f"file://{origin}", "ref": "main", "dest": "site"}
    code, error, _, _ = _run(tmp_path, git)
    assert code == 0, error
    marker = tmp_path / "MARKER"
    site = tmp_path / "site"
    value = {"core.fsmonitor": f"touch '{marker}'; true", "core.sshCommand": f"touch '{marker}'; ssh",
             "remote.origin.uploadpack": f"touch '{marker}';git-upload-pack"}.get(key, str(tmp_path / "included"))
    (tmp_path / "included").write_text(f"[core]\n\tfsmonitor = touch '{marker}'; true\n")
    _git("config", key, value, cwd=site)
    code, error, stderr, attempts = _run(tmp_path, git, retries=2)
    assert not marker.exists(), f"planted {key} ran a command"
    assert code == 1 and attempts == 1, stderr
    assert f"sets {key.lower()}" in error and "remove" in error
    assert "touch" not in error  # the key is named, never its value


def test_an_existing_checkout_of_ours_with_submodules_sparse_and_depth_is_updated(tmp_path: Path,
                                                                                    origin: Path) -> None:
    """The keys this step writes (a submodule's core.worktree, branch, sparse settings) are not refused."""
    lib = _repo(tmp_path / "lib", {"lib.txt": "library\n"})
    (origin / "docs").mkdir()
    (origin / "docs" / "d.txt").write_text("d")
    _git("add", ".", cwd=origin)
    _git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "vendor/lib", cwd=origin)
    _git("commit", "-q", "-m", "lib", cwd=origin)
    git = {"repo": f"file://{origin}", "ref": "main", "dest": "site", "submodules": True, "depth": 1,
           "sparse": ["index.html", "vendor/"]}
    for _ in range(2):
        code, error, stderr, _ = _run(tmp_path, git)
        assert code == 0, error
    assert "updated to main" in stderr
    assert (tmp_path / "site" / "vendor" / "lib" / "lib.txt").read_text() == "library\n"
    assert not (tmp_path / "site" / "docs").exists()


def test_a_submodule_whose_git_file_names_another_repository_is_refused(tmp_path: Path, origin: Path) -> None:
    lib = _repo(tmp_path / "lib", {"lib.txt": "library\n"})
    _with_submodule(origin, str(lib), _git("rev-parse", "HEAD", cwd=lib))
    git = {"repo": f"file://{origin}", "ref": "main", "dest": "site", "submodules": True}
    code, error, _, _ = _run(tmp_path, git)
    assert code == 0, error
    (lib / "lib.txt").write_text("library v2\n")
    _git("commit", "-q", "-am", "v2", cwd=lib)
    _with_submodule(origin, str(lib), _git("rev-parse", "HEAD", cwd=lib))  # the update must fetch the submodule
    marker = tmp_path / "MARKER"
    planted = tmp_path / "planted.git"  # a git directory the app made, with a command in its configuration
    _git("init", "-q", "--bare", str(planted), cwd=tmp_path)
    _git("config", "remote.origin.url", str(lib), cwd=planted)
    _git("config", "remote.origin.uploadpack", f"touch '{marker}';git-upload-pack", cwd=planted)
    _git("config", "core.bare", "false", cwd=planted)
    _git("config", "core.worktree", str(tmp_path / "site" / "vendor" / "lib"), cwd=planted)
    (tmp_path / "site" / "vendor" / "lib" / ".git").write_text(f"gitdir: {planted}\n")
    code, error, stderr, _ = _run(tmp_path, git)
    assert not marker.exists(), "the planted git directory's uploadpack ran"
    assert code == 1, stderr
    assert "core.worktree" in error and "another repository" in error


@pytest.mark.skipif(os.geteuid() != 0, reason="giving the checkout to another user needs root")
def test_a_checkout_owned_by_another_user_is_a_final_error_in_words(tmp_path: Path, origin: Path) -> None:
    git = {"repo": f"file://{origin}", "ref": "main", "dest": "site"}
    code, error, _, _ = _run(tmp_path, git)
    assert code == 0, error
    marker = tmp_path / "MARKER"
    _hook(tmp_path / "site" / ".git" / "hooks" / "post-checkout", marker)
    for path in [tmp_path / "site", *(tmp_path / "site").rglob("*")]:
        os.chown(path, 65534, 65534, follow_symlinks=False)
    code, error, stderr, attempts = _run(tmp_path, git, retries=2)
    assert code == 1 and attempts == 1, stderr
    assert "owned by another user" in error and "remove it" in error
    assert "safe.directory" not in error, error  # git's advice would trust the other user's hooks
    assert not marker.exists()


def test_a_git_file_in_place_of_the_git_directory_is_refused(tmp_path: Path, origin: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    _git("clone", "-q", "--separate-git-dir", str(elsewhere), f"file://{origin}", str(tmp_path / "site"),
         cwd=tmp_path)
    code, error, stderr, _ = _run(tmp_path, {"repo": f"file://{origin}", "ref": "main", "dest": "site"})
    assert code == 1, stderr
    assert ".git is not a directory" in error


def test_a_home_gitconfig_with_fsmonitor_runs_nothing(tmp_path: Path, origin: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    marker = tmp_path / "MARKER"
    (home / ".gitconfig").write_text(f"[core]\n\tfsmonitor = touch '{marker}'; true\n")
    env = {"HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"}
    _git("status", "--short", cwd=origin)  # the fixture's own git has its own HOME: nothing yet
    assert not marker.exists()
    code, error, _, _ = _run(tmp_path, {"repo": f"file://{origin}", "ref": "main", "dest": "site"}, env=env)
    assert code == 0, error
    assert not marker.exists(), "core.fsmonitor of the home's .gitconfig ran"
    code, error, _, _ = _run(tmp_path, {"repo": f"file://{origin}", "ref": "main", "dest": "site"}, env=env)
    assert code == 0, error
    assert not marker.exists(), "core.fsmonitor of the home's .gitconfig ran on an update"
    # positive control: the same configuration makes git run it
    subprocess.run(["git", "status", "--short"], cwd=tmp_path / "site", env={**os.environ, **env}, check=True,
                   capture_output=True, timeout=30)
    assert marker.exists()


@pytest.mark.parametrize(("repo", "protocols"), [
    ("https://git.example.com/org/site.git", "https:ssh:git"),
    ("http://127.0.0.1:8080/site.git", "https:ssh:git:http"),
    ("HTTP://127.0.0.1/site.git", "https:ssh:git:http"),
    ("git@github.com:org/site.git", "https:ssh:git"),
    ("ssh://git@host/site.git", "https:ssh:git"),
    ("file:///srv/site.git", "https:ssh:git:file"),
    ("/srv/site.git", "https:ssh:git:file"),
    ("./site", "https:ssh:git:file"),
    ("site", "https:ssh:git:file"),
    ("ext::sh -c true", "https:ssh:git"),
    ("fd::3", "https:ssh:git"),
])
def test_the_protocols_follow_the_spec_s_own_repository(repo: str, protocols: str) -> None:
    assert git_kind.allowed_protocols(repo) == protocols


@pytest.mark.parametrize(("repo", "scope"), [
    ("https://git.example.com/org/site.git", "https://git.example.com/"),
    ("https://bot@Git.Example.com:8443/org/site.git", "https://git.example.com:8443/"),
    ("http://127.0.0.1:3000/site.git", "http://127.0.0.1:3000/"),
    ("https://[::1]:8443/site.git", "https://[::1]:8443/"),
    ("ssh://git@host/site.git", None),
    ("git@github.com:org/site.git", None),
    ("file:///srv/site.git", None),
    ("https://host:notaport/site.git", None),
])
def test_the_password_is_scoped_to_the_repository_s_origin(repo: str, scope: str | None) -> None:
    assert git_kind.credential_scope(repo) == scope
