"""The git step against real git repositories (file:// remotes) and a real HTTP server for credentials."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from tests.helpers import git as _git
from tests.helpers import run_cli
from tests.httpservers import sequence


def _run(tmp_path: Path, git: dict[str, Any], retries: int = 0) -> tuple[int, str, str]:
    spec = tmp_path / "init.yaml"
    spec.write_text(json.dumps({"version": 1, "name": "clone", "status_file": "status.json", "steps": [
        {"name": "clone", "retries": retries, "retry_delay": "10ms", "git": git}]}))
    result = run_cli("run", str(spec))
    step = json.loads((tmp_path / "status.json").read_text())["steps"][0]
    return result.code, step.get("error", ""), result.stderr


def test_branch_shallow_then_idempotent_update(tmp_path: Path, origin: Path) -> None:
    git = {"repo": f"file://{origin}", "ref": "main", "dest": "site", "depth": 1}
    code, error, _ = _run(tmp_path, git)
    assert code == 0, error
    assert (tmp_path / "site/index.html").read_text() == "v2\n"
    assert _git("rev-parse", "HEAD", cwd=tmp_path / "site") == _git("rev-parse", "HEAD", cwd=origin)
    assert _git("rev-list", "--count", "HEAD", cwd=tmp_path / "site") == "1"  # shallow
    (origin / "index.html").write_text("v3\n")
    _git("commit", "-q", "-am", "v3", cwd=origin)
    code, error, stderr = _run(tmp_path, git)
    assert code == 0, error
    assert (tmp_path / "site/index.html").read_text() == "v3\n"
    assert "updated to main" in stderr


def test_tag_and_commit(tmp_path: Path, origin: Path) -> None:
    code, error, _ = _run(tmp_path, {"repo": f"file://{origin}", "ref": "v1.0", "dest": "tagged"})
    assert code == 0, error
    assert (tmp_path / "tagged/index.html").read_text() == "v1\n"
    first = _git("rev-list", "--max-parents=0", "HEAD", cwd=origin)
    code, error, _ = _run(tmp_path, {"repo": f"file://{origin}", "ref": first, "dest": "pinned", "depth": 1})
    assert code == 0, error
    assert _git("rev-parse", "HEAD", cwd=tmp_path / "pinned") == first


def test_unknown_ref_is_final_and_leaves_nothing(tmp_path: Path, origin: Path) -> None:
    code, error, _ = _run(tmp_path, {"repo": f"file://{origin}", "ref": "no-such-branch", "dest": "site"}, retries=3)
    assert code == 1
    assert "couldn't find remote ref no-such-branch" in error
    assert json.loads((tmp_path / "status.json").read_text())["steps"][0]["attempts"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["init.yaml", "origin", "status.json"]


def test_empty_existing_directory_is_used_in_place(tmp_path: Path, origin: Path) -> None:
    (tmp_path / "mount").mkdir()
    code, error, _ = _run(tmp_path, {"repo": f"file://{origin}", "ref": "main", "dest": "mount"})
    assert code == 0, error
    assert (tmp_path / "mount/index.html").read_text() == "v2\n"


def test_foreign_content_is_refused(tmp_path: Path, origin: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy/file").write_text("x")
    code, error, _ = _run(tmp_path, {"repo": f"file://{origin}", "ref": "main", "dest": "busy"})
    assert code == 1 and "exists, is not empty and is not a git checkout" in error


def test_password_sent_as_basic_auth_and_masked(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("git-token-canary-4242\n")
    with sequence((401, b"no", {"WWW-Authenticate": 'Basic realm="git"'})) as server:
        code, error, stderr = _run(tmp_path, {"repo": server.url("/org/repo.git"), "ref": "main", "dest": "r",
                                              "username": "bot", "password": {"file": str(token)}})
    assert code == 1
    expected = "Basic " + base64.b64encode(b"bot:git-token-canary-4242").decode()
    assert any(headers.get("Authorization") == expected for _, headers in server.requests)
    assert error.startswith("git fetch") and error in stderr  # what is scanned holds the failure
    assert "git-token-canary-4242" not in stderr + error
    assert base64.b64encode(b"bot:git-token-canary-4242").decode() not in stderr + error
