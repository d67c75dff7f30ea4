"""Attacks on the hardening of issue 30, after it landed: what still got through, and a few that held.

Each test runs the real ``prefect-init run`` against real files, real git repositories (``file://``) and real
templates, with harmless markers, and reads the outcome back from the disk (a mode, an owner, a ref in a checkout,
a file's size). Where an attack held on the code as it was, the test is kept as a guard and says so.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.helpers import clean_env, git, run_cli, write_spec

ROOT = os.geteuid() == 0
APP_UID = 1000


def _volume(tmp_path: Path, name: str = "vol") -> Path:
    """A directory the app can write (an emptyDir, an fsGroup volume): 0777, the app's when we are root."""
    volume = tmp_path / name
    volume.mkdir()
    volume.chmod(0o777)
    if ROOT:
        os.chown(volume, APP_UID, APP_UID)
    return volume


def _run(tmp_path: Path, steps: str, timeout: float = 60, **env: str) -> tuple[int, dict[str, dict[str, str]], str]:
    spec = write_spec(tmp_path, "version: 1\nname: attacks\nstatus_file: status.json\nsteps:\n" + steps)
    result = run_cli("run", str(spec), timeout=timeout, env=clean_env(**env))
    status = tmp_path / "status.json"
    steps_by_name = {s["name"]: s for s in json.loads(status.read_text())["steps"]} if status.exists() else {}
    return result.code, steps_by_name, result.stderr


# -- hard links: a second name of a file outside the entry --------------------------------------------------------


def _secret_beside(volume: Path) -> Path:
    """A root-only file on the same file system as the volume (a hard link cannot cross one): what prefect-init
    itself writes 0400 (a rendered secret), or a file of the image on the same overlay."""
    secret = volume.parent / "secret.env"
    secret.write_text("DB_PASSWORD=marker\n")
    secret.chmod(0o400)
    return secret


def test_a_files_entry_with_another_hard_link_is_refused_and_the_file_untouched(tmp_path: Path) -> None:
    volume = _volume(tmp_path)
    secret = _secret_beside(volume)
    os.link(secret, volume / "app.log")  # what the app plants (fs.protected_hardlinks=0 lets it link any file)
    before = secret.stat()
    code, steps, _ = _run(tmp_path, """
  - name: perms
    files:
      files: [{path: vol/app.log, mode: "0666", owner: "1000:1000"}]
""")
    after = secret.stat()
    assert (stat.S_IMODE(after.st_mode), after.st_uid, after.st_gid) == \
        (0o400, before.st_uid, before.st_gid), oct(after.st_mode)
    assert code == 1
    error = steps["perms"]["error"]
    assert error.startswith(f"{volume / 'app.log'} has 2 hard links: another name of the same file"), error
    assert steps["perms"]["attempts"] == 1  # final: a retry finds the same link


def test_a_files_entry_with_one_link_still_gets_its_mode(tmp_path: Path) -> None:
    """The positive control: the refusal is about a second name, not about files in a volume."""
    volume = _volume(tmp_path)
    (volume / "app.log").write_text("")
    code, _, stderr = _run(tmp_path, """
  - name: perms
    files:
      files: [{path: vol/app.log, mode: "0666"}]
""")
    assert code == 0, stderr
    assert stat.S_IMODE((volume / "app.log").stat().st_mode) == 0o666


def test_a_hard_link_in_a_recursive_tree_is_left_alone(tmp_path: Path) -> None:
    volume = _volume(tmp_path)
    secret = _secret_beside(volume)
    tree = volume / "data" / "deep"
    tree.mkdir(parents=True)
    os.link(secret, tree / "innocent.txt")
    (tree / "own.txt").write_text("app data\n")
    code, _steps, stderr = _run(tmp_path, """
  - name: perms
    files:
      dirs: [{path: vol/data, mode: "0777", recursive: true}]
""")
    assert code == 0, stderr
    assert stat.S_IMODE((tree / "own.txt").stat().st_mode) == 0o777  # the walk did run (positive control)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o400
    assert "1 file with another hard link left alone" in stderr, stderr


# -- git: a ref is a name, never a refspec ----------------------------------------------------------------------


def test_a_ref_from_a_variable_cannot_write_a_ref_into_the_checkout(tmp_path: Path, origin: Path) -> None:
    """``ref: main:refs/heads/planted`` made ``git fetch origin <ref>`` write a branch of the attacker's naming
    (a refspec, the first half of a ``+src:dst`` force-update) into the checkout."""
    dest = tmp_path / "site"
    code, _steps, stderr = _run(tmp_path, f"""
  - name: clone
    git: {{repo: "file://{origin}", ref: "${{SITE_REF:-main}}", dest: "{dest}"}}
""", SITE_REF="main:refs/heads/planted")
    planted = dest / ".git" / "refs" / "heads" / "planted"
    assert not planted.exists()
    if dest.exists():
        assert "planted" not in git("show-ref", cwd=dest)
    assert code == 2, stderr
    assert "steps[0].git.ref: holds ':'" in stderr, stderr


@pytest.mark.parametrize("ref", ["main\nstep 'db' succeeded", "refs/heads/*", "main..v1.0", "main@{1}"])
def test_a_ref_that_no_branch_or_tag_can_be_named_is_refused(tmp_path: Path, origin: Path, ref: str) -> None:
    code, _, stderr = _run(tmp_path, f"""
  - name: clone
    git: {{repo: "file://{origin}", ref: "${{SITE_REF}}", dest: "{tmp_path / 'site'}"}}
""", SITE_REF=ref)
    assert code == 2, stderr
    assert "steps[0].git.ref: " in stderr and "never a branch, a tag or a commit" in stderr, stderr
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize("ref", ["v1.0", "feature/x-1.2_rc", "HEAD"])
def test_ordinary_refs_still_pass(tmp_path: Path, origin: Path, ref: str) -> None:
    if ref.startswith("feature"):
        git("branch", ref, cwd=origin)
    code, _steps, stderr = _run(tmp_path, f"""
  - name: clone
    git: {{repo: "file://{origin}", ref: "${{SITE_REF}}", dest: "{tmp_path / 'site'}"}}
""", SITE_REF=ref)
    assert code == 0, stderr
    assert (tmp_path / "site" / "index.html").exists()


# -- templates: the output is bounded, the sandbox holds ----------------------------------------------------------


def test_a_template_whose_output_grows_past_the_bound_fails_before_filling_the_memory(tmp_path: Path) -> None:
    """Each item is within the repetition bound (16 Mi), their sum is not: before the bound, 30 items of 10 MB
    were joined in memory (twice the size at the peak) and written; a loop of 10^5 filled the container."""
    dest = tmp_path / "out.txt"
    code, steps, stderr = _run(tmp_path, f"""
  - name: big
    timeout: 60s
    template:
      inline: "{{% for i in range(30) %}}{{{{ 'x' * 10000000 }}}}{{% endfor %}}"
      dest: "{dest}"
""")
    assert code == 1, stderr
    assert not dest.exists()
    error = steps["big"]["error"]
    assert "output is larger than 64 MiB" in error, error


def test_an_ordinary_large_output_is_written(tmp_path: Path) -> None:
    dest = tmp_path / "out.txt"
    code, _, stderr = _run(tmp_path, f"""
  - name: big
    template:
      inline: "{{% for i in range(4) %}}{{{{ 'x' * 1000000 }}}}{{% endfor %}}"
      dest: "{dest}"
""")
    assert code == 0, stderr
    assert dest.stat().st_size == 4_000_000


@pytest.mark.parametrize("line", ["x", "a."])
def test_a_long_line_of_output_is_written_within_the_step_deadline(tmp_path: Path, line: str) -> None:
    """A value of 2 MB on one line (a variable, a document): deciding the output's mode ran redaction's patterns
    over it, which try every position of a run of letters again: 400 KB took 240 s, so this one ran into its
    deadline and failed (the engine holds the deadline; the step never finished)."""
    dest = tmp_path / "out.txt"
    code, _steps, stderr = _run(tmp_path, f"""
  - name: long
    timeout: 20s
    template:
      inline: "{{{{ '{line}' * 1000000 }}}}"
      dest: "{dest}"
""", timeout=90)
    assert code == 0, stderr
    assert dest.stat().st_size == len(line) * 1_000_000
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644


@pytest.mark.parametrize("escape", [
    "{{ cycler.__init__.__globals__.os.getcwd() }}",
    "{{ self.__init__.__globals__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ '{0.__class__.__init__.__globals__}'.format(cycler) }}",
    "{{ cycler|attr('__init__') }}",
])
def test_known_sandbox_escapes_are_refused(tmp_path: Path, escape: str) -> None:
    """Held before: Jinja2 3.1.6's SandboxedEnvironment (str.format and |attr escapes fixed in 3.1.5/3.1.6)."""
    dest = tmp_path / "out.txt"
    code, steps, stderr = _run(tmp_path, f"""
  - name: escape
    template:
      inline: {json.dumps(escape)}
      dest: "{dest}"
""")
    assert code == 1, stderr
    assert not dest.exists() or "globals" not in dest.read_text()
    assert "template" in steps["escape"]["error"]


# -- redaction: a long line of output holds the run past its deadline -----------------------------------------


def test_a_long_line_of_command_output_does_not_hold_the_run_past_its_deadline(tmp_path: Path) -> None:
    """A step prints one line of 200 KB (``a.a.a.``: what a step's output or an app's log can hold). Every line is
    redacted before it is shown; redaction took 100 s over it, against ``timeout: 5s``: the engine's failure at
    the deadline was reported only when the redaction was done."""
    import subprocess
    import time

    spec = write_spec(tmp_path, """
version: 1
name: flood
status_file: status.json
steps:
  - name: flood
    timeout: 5s
    command: ["python3", "-c", "print('a.' * 100000)"]
""")
    started = time.monotonic()
    try:
        result = run_cli("run", str(spec), timeout=60, env=clean_env())
    except subprocess.TimeoutExpired:
        pytest.fail("prefect-init run still running 60 s after a step with timeout: 5s started")
    took = time.monotonic() - started
    assert result.code in (0, 1), result.stderr[-2000:]
    assert took < 30, f"{took:.0f} s for a step with timeout: 5s (and the engine's grace)"


# -- config: a file:// source in a volume the app can write -------------------------------------------------------


def test_a_config_file_url_does_not_follow_a_link_planted_in_a_volume(tmp_path: Path) -> None:
    """``url: file:///shared/app.yaml`` on a volume the app writes: a link planted there copied whatever it
    pointed to (``/proc/self/environ``: the Vault token, the API key) into ``dest``, for the app to read."""
    volume = _volume(tmp_path)
    secret = tmp_path / "etc" / "secret.yaml"
    secret.parent.mkdir()
    secret.write_text("token: marker-not-for-the-app\n")
    (volume / "app.yaml").symlink_to(secret)
    dest = tmp_path / "out" / "app.yaml"
    code, steps, _ = _run(tmp_path, f"""
  - name: cfg
    config: {{url: "file://{volume}/app.yaml", dest: "{dest}"}}
""")
    assert not dest.exists() or "marker-not-for-the-app" not in dest.read_text()
    assert code == 1
    error = steps["cfg"]["error"]
    assert f"{volume / 'app.yaml'} is a symbolic link (to {secret})" in error, error


def test_a_config_file_url_at_a_fifo_fails_at_once(tmp_path: Path) -> None:
    """A FIFO where the file was: opening it waited for a writer until the step's deadline (300 s here)."""
    volume = _volume(tmp_path)
    os.mkfifo(volume / "app.yaml")
    dest = tmp_path / "out" / "app.yaml"
    code, steps, _ = _run(tmp_path, f"""
  - name: cfg
    timeout: 300s
    config: {{url: "file://{volume}/app.yaml", dest: "{dest}"}}
""", timeout=60)
    assert code == 1
    assert "is not a regular file" in steps["cfg"]["error"], steps["cfg"]["error"]
    assert not dest.exists()


def test_a_config_file_url_of_a_regular_file_is_copied(tmp_path: Path) -> None:
    """The positive control: a regular file in the same volume is read."""
    volume = _volume(tmp_path)
    (volume / "app.yaml").write_text("port: 8080\n")
    dest = tmp_path / "out" / "app.yaml"
    code, _, stderr = _run(tmp_path, f"""
  - name: cfg
    config: {{url: "file://{volume}/app.yaml", dest: "{dest}"}}
""")
    assert code == 0, stderr
    assert dest.read_text() == "port: 8080\n"


def test_a_template_files_document_is_not_read_through_a_link_planted_in_a_volume(tmp_path: Path) -> None:
    """``files: {app: /shared/app.yaml}``: a link planted there put what it pointed to into the rendered output."""
    volume = _volume(tmp_path)
    secret = tmp_path / "etc" / "secret.yaml"
    secret.parent.mkdir()
    secret.write_text("token: marker-not-for-the-app\n")
    (volume / "app.yaml").symlink_to(secret)
    dest = tmp_path / "out.txt"
    code, steps, _ = _run(tmp_path, f"""
  - name: render
    template:
      inline: "{{{{ app.token }}}}"
      files: {{app: "{volume}/app.yaml"}}
      dest: "{dest}"
""")
    assert not dest.exists() or "marker-not-for-the-app" not in dest.read_text()
    assert code == 1
    assert f"{volume / 'app.yaml'} is a symbolic link (to {secret})" in steps["render"]["error"]
    (volume / "app.yaml").unlink()
    (volume / "app.yaml").write_text("token: ordinary\n")  # the positive control: a regular file is read
    code, _, stderr = _run(tmp_path, f"""
  - name: render
    template:
      inline: "{{{{ app.token }}}}"
      files: {{app: "{volume}/app.yaml"}}
      dest: "{dest}"
""")
    assert code == 0, stderr
    assert dest.read_text() == "ordinary"


@pytest.mark.parametrize("tag", ["{% include 'planted' %}", "{% import 'planted' as m %}", "{% extends 'planted' %}"])
@pytest.mark.parametrize("planted", ["fifo", "dev-zero"])
def test_a_template_never_reads_a_fifo_or_a_device_from_its_directory(tmp_path: Path, tag: str, planted: str) -> None:
    """Held before: the loader opens without blocking, takes regular files only, and a link out of the directory
    (to /dev/zero) is refused by the path the kernel says it opened. Include, import and extends share it."""
    folder = _volume(tmp_path, "templates")
    if planted == "fifo":
        os.mkfifo(folder / "planted")
    else:
        (folder / "planted").symlink_to("/dev/zero")
    (folder / "main.j2").write_text(tag + "\n")
    dest = tmp_path / "out.txt"
    code, steps, _ = _run(tmp_path, f"""
  - name: render
    timeout: 300s
    template: {{source: "{folder / 'main.j2'}", dest: "{dest}"}}
""", timeout=60)
    assert code == 1
    error = steps["render"]["error"]
    assert ("is not a regular file" if planted == "fifo" else "outside") in error, error
    assert not dest.exists()


# -- HTTP: a gzip bomb ------------------------------------------------------------------------------------------


def _gzip_of_spaces(size: int) -> bytes:
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip wrapper
    block = b" " * (1024 * 1024)
    out = [packer.compress(block) for _ in range(size // len(block))]
    return b"".join([*out, packer.flush()])


def test_max_bytes_counts_a_gzip_body_after_decoding(tmp_path: Path) -> None:
    """Held before: 200 MB of spaces, 200 KB on the wire with Content-Encoding: gzip, against max_bytes 1MiB; the
    small answer (the positive control) shows the body is decoded before it is written and counted."""
    from tests.httpservers import serve

    bomb, small = _gzip_of_spaces(200 * 1024 * 1024), _gzip_of_spaces(1024 * 1024)
    assert len(bomb) < 1024 * 1024
    dest = tmp_path / "app.yaml"
    with serve(lambda n: (200, bomb if n else small, {"Content-Encoding": "gzip",
                                                      "Content-Type": "text/plain"})) as server:
        spec = f"""
  - name: cfg
    config: {{url: "{server.url('/app.yaml')}", dest: "{dest}", max_bytes: 2MiB}}
"""
        code, _, stderr = _run(tmp_path, spec)
        assert code == 0, stderr
        assert dest.stat().st_size == 1024 * 1024  # decoded: 1 MiB of spaces (an empty YAML document)
        dest.unlink()
        code, steps, _ = _run(tmp_path, spec)
    assert code == 1
    assert "larger than max_bytes (2097152 bytes)" in steps["cfg"]["error"], steps["cfg"]["error"]
    assert not dest.exists()


# -- Vault: an answer that is not Vault's ---------------------------------------------------------------------


@pytest.mark.parametrize(("body", "kind"), [(b"<html>Sign in</html>", "text/html"),
                                            (b'{"auth": null}', "application/json"),
                                            (b'{"auth": {"client_token": 12}}', "application/json")])
def test_a_vault_login_answered_by_something_else_fails_in_words(tmp_path: Path, body: bytes, kind: str) -> None:
    """Not Vault's documented answer (tests/vaultserver.py follows those): a proxy's login page, an empty auth
    block. Before: 'vault login (approle at auth/approle): unexpected TypeError'."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    (tmp_path / "sid").write_text("secret-id-marker\n")
    try:
        code, steps, stderr = _run(tmp_path, f"""
  - name: secrets
    vault:
      address: http://127.0.0.1:{server.server_address[1]}
      auth: {{approle: {{role_id: r1, secret_id_file: "{tmp_path / 'sid'}"}}}}
      secrets: [{{path: secret/data/app, dest: "{tmp_path / 'app.json'}"}}]
""")
    finally:
        server.shutdown()
        server.server_close()
    assert code == 1
    error = steps["secrets"]["error"]
    assert error == "vault login (approle at auth/approle): the answer holds no client token, so it is not " \
        "Vault's (check that address: is Vault itself, not a proxy, a login page or another service)", error
    assert "secret-id-marker" not in stderr


# -- git: a host or a path that is an ssh option ----------------------------------------------------------------


@pytest.mark.parametrize(("repo", "final"), [("ssh://-oProxyCommand=touch%20{marker}/x", True),
                                             ("ssh://git@-oProxyCommand=touch%20{marker}/x", False),
                                             ("ssh://host/-oProxyCommand=touch%20{marker}", False)])
def test_an_ssh_url_whose_host_is_an_option_runs_nothing(tmp_path: Path, repo: str, final: bool) -> None:
    """Held before: git refuses a host that begins with '-' ('strange hostname', CVE-2017-1000117), and gives ssh
    a user@host or a path as one argument, never an option. The marker file proves nothing ran. The refusal was
    retried as if the network had failed; now it is final (the other two are ssh failing to reach a host of that
    name: a network failure, retried)."""
    marker = tmp_path / "PWNED"
    (tmp_path / "known_hosts").write_text("")
    url = repo.format(marker=marker)
    code, steps, _ = _run(tmp_path, f"""
  - name: clone
    retries: 2
    retry_delay: 10ms
    git: {{repo: "{url}", dest: "{tmp_path / 'site'}", known_hosts: {{file: "{tmp_path / 'known_hosts'}"}}}}
""")
    assert not marker.exists()
    assert code == 1
    assert steps["clone"]["attempts"] == (1 if final else 3), steps["clone"]


def test_a_gitmodules_update_command_runs_nothing(tmp_path: Path) -> None:
    """Held before: ``update = !touch MARKER`` in a repository's .gitmodules; git honours '!' only from the
    checkout's own configuration (CVE-2019-19604), and refuses the value. The marker proves nothing ran."""
    marker = tmp_path / "PWNED"
    lib, top = tmp_path / "lib", tmp_path / "top"
    for repo in (lib, top):
        repo.mkdir()
        git("init", "-q", "-b", "main", cwd=repo)
    (lib / "l.txt").write_text("lib\n")
    git("add", ".", cwd=lib)
    git("commit", "-q", "-m", "lib", cwd=lib)
    (top / "t.txt").write_text("top\n")
    git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "vendor/lib", cwd=top)
    git("config", "-f", ".gitmodules", "submodule.vendor/lib.update", f"!touch {marker}", cwd=top)
    git("add", ".", cwd=top)
    git("commit", "-q", "-m", "top", cwd=top)
    code, steps, _ = _run(tmp_path, f"""
  - name: clone
    git: {{repo: "file://{top}", ref: main, dest: "{tmp_path / 'site'}", submodules: true}}
""")
    assert not marker.exists()
    assert code == 1
    assert "submodule.vendor/lib.update" in steps["clone"]["error"], steps["clone"]["error"]


def test_a_file_read_from_a_writable_directory_is_not_read_through_a_hard_link(tmp_path: Path) -> None:
    """A hard link passes the path check (``/proc/self/fd`` names the link's own path): an include, a template's
    ``files:`` or a config's ``file://`` source that is a second name of a root-only file copied it into the
    output."""
    folder = _volume(tmp_path, "templates")
    secret = _secret_beside(folder)
    secret.write_text("token: marker-not-for-the-app\n")
    os.link(secret, folder / "part.yaml")
    (folder / "main.j2").write_text("{% include 'part.yaml' %}")
    out = tmp_path / "out"
    main, part = folder / "main.j2", folder / "part.yaml"
    steps_text = {
        "include": f'template: {{source: "{main}", dest: "{out}/a.txt"}}',
        "files": f'template: {{inline: "{{{{ d.token }}}}", files: {{d: "{part}"}}, dest: "{out}/b.txt"}}',
        "config": f'config: {{url: "file://{part}", dest: "{out}/c.yaml"}}',
    }
    for name, text in steps_text.items():
        code, steps, _ = _run(tmp_path, f"  - name: {name}\n    {text}\n")
        assert code == 1, name
        assert "has 2 hard links" in steps[name]["error"], (name, steps[name]["error"])
    assert not out.exists() or all("marker-not-for-the-app" not in f.read_text() for f in out.iterdir())


# -- command: one endless line of output -------------------------------------------------------------------------


def test_one_huge_line_of_command_output_is_cut_and_bounded(tmp_path: Path) -> None:
    """A step prints one line of 50 MB (no newline until the end). Before: 233 MB of memory, and the step reported
    'succeeded in 7.9s' against timeout: 5s (the process ended at once; logging the line took the rest). Now the
    line is cut at 64 KiB and the rest counted: memory and time stay bound."""
    import subprocess
    import sys

    spec = write_spec(tmp_path, """
version: 1
name: flood
status_file: status.json
steps:
  - name: flood
    timeout: 5s
    command: [sh, -c, "head -c 50000000 /dev/zero | tr '\\\\0' a; echo; echo after-the-line"]
""")
    probe = ("import resource, subprocess, sys, time\n"
             "started = time.monotonic()\n"
             f"proc = subprocess.run([sys.executable, '-m', 'prefect_init.cli', 'run', {str(spec)!r}],\n"
             "                      capture_output=True, text=True, timeout=120)\n"
             "print(proc.returncode, round(time.monotonic() - started, 1),\n"
             "      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)\n"
             "sys.stderr.write(proc.stderr[-3000:])\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=180, env=clean_env())
    code, took, peak_mb = out.stdout.split()
    steps = json.loads((tmp_path / "status.json").read_text())["steps"]
    assert int(code) == 0 and steps[0]["status"] == "succeeded", out.stderr
    assert "after-the-line" in out.stderr  # the control: the output after the long line was read and logged
    assert "the line goes on for " in out.stderr and "more bytes, not shown" in out.stderr, out.stderr[-500:]
    assert int(peak_mb) < 150, f"{peak_mb} MB peak for one 50 MB line"
    assert float(took) < 20, f"{took} s"
