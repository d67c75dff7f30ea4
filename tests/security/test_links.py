"""No write through a symbolic link: issue 30, item 3.

The pod runs as root (CHOWN, FOWNER, DAC_OVERRIDE) on volumes the app can write. Whatever the app leaves there -
a link where a file or a directory is wanted, a link in place of a parent directory, a link in a tree to set
``recursive`` on, a link an ``{% include %}`` reads - must never steer a write, a mode, an owner or a read to
where it points. Each test plants real links in a directory the app could write (mode 0777, owned by uid 1000
when the tests run as root), and reads the outcome back from the disk.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.helpers import clean_env, run_cli, write_spec

ROOT = os.geteuid() == 0
APP_UID = 1000


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _volume(tmp_path: Path, name: str = "vol") -> Path:
    """A directory the app can write: 0777, owned by the app's uid when we are root (an emptyDir, an fsGroup
    volume or one the app owns look like this)."""
    volume = tmp_path / name
    volume.mkdir()
    volume.chmod(0o777)
    if ROOT:
        os.chown(volume, APP_UID, APP_UID)
    return volume


def _shadow(tmp_path: Path) -> Path:
    """A file outside every volume that the app must not get at: root's, 0640."""
    outside = tmp_path / "etc"
    outside.mkdir(exist_ok=True)
    shadow = outside / "shadow"
    shadow.write_text("root:$6$secret-hash:19000::::::\n")
    shadow.chmod(0o640)
    return shadow


def _status(tmp_path: Path) -> dict[str, dict[str, str]]:
    return {s["name"]: s for s in json.loads((tmp_path / "status.json").read_text())["steps"]}


def _run(tmp_path: Path, steps: str, **env: str) -> tuple[int, dict[str, dict[str, str]], str]:
    spec = write_spec(tmp_path, "version: 1\nname: links\nstatus_file: status.json\nsteps:\n" + steps)
    result = run_cli("run", str(spec), timeout=60, env=clean_env(**env))
    return result.code, _status(tmp_path), result.stderr


def test_a_file_entry_that_is_a_link_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    volume, shadow = _volume(tmp_path), _shadow(tmp_path)
    (volume / "app.log").symlink_to(shadow)
    before = shadow.stat()
    code, steps, _ = _run(tmp_path, """
  - name: perms
    files:
      files: [{path: vol/app.log, mode: "0666", owner: "1000:1000"}]
""")
    assert code == 1
    error = steps["perms"]["error"]
    assert error.startswith(f"{volume / 'app.log'} is a symbolic link (to {shadow}); prefect-init never follows "
                            "links in a volume"), error
    after = shadow.stat()
    assert (stat.S_IMODE(after.st_mode), after.st_uid, after.st_gid) == (0o640, before.st_uid, before.st_gid)
    assert shadow.read_text() == "root:$6$secret-hash:19000::::::\n"
    assert (volume / "app.log").is_symlink()  # the link is left as it was, for a person to look at


def test_a_dir_entry_that_is_a_link_is_refused_recursive_or_not(tmp_path: Path) -> None:
    volume = _volume(tmp_path)
    tree = tmp_path / "etc" / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "file").write_text("x")
    for p in (tree, tree / "sub", tree / "sub" / "file"):
        p.chmod(0o700)
    (volume / "data").symlink_to(tree)
    (volume / "logs").symlink_to(tree / "sub")
    code, steps, _ = _run(tmp_path, """
  - name: plain
    files: {dirs: [{path: vol/logs, mode: "0777"}]}
  - name: deep
    after: []
    files: {dirs: [{path: vol/data, mode: "0777", owner: "1000:1000", recursive: true}]}
""")
    assert code == 1
    for name, link in (("plain", "logs"), ("deep", "data")):
        assert steps[name]["status"] == "failed"
        assert steps[name]["error"].startswith(f"{volume / link} is a symbolic link (to "), steps[name]["error"]
    for p in (tree, tree / "sub", tree / "sub" / "file"):
        assert _mode(p) == 0o700 and p.stat().st_uid == os.geteuid(), p


def test_recursive_leaves_links_inside_the_tree_and_their_targets_alone(tmp_path: Path) -> None:
    volume, shadow = _volume(tmp_path), _shadow(tmp_path)
    tree = tmp_path / "etc" / "tree"
    (tree / "deep").mkdir(parents=True)
    (tree / "deep" / "file").write_text("x")
    for p in (tree, tree / "deep", tree / "deep" / "file"):
        p.chmod(0o700)
    data = volume / "data"
    (data / "real").mkdir(parents=True)
    (data / "real" / "own.txt").write_text("mine")
    (data / "passwd").symlink_to(shadow)
    (data / "real" / "tree").symlink_to(tree)
    if ROOT:
        os.lchown(data / "passwd", 0, 0)
    code, steps, _ = _run(tmp_path, """
  - name: deep
    files: {dirs: [{path: vol/data, mode: "0775", owner: "1000:1000", recursive: true}]}
""")
    assert code == 0, steps
    # what is really in the tree got the mode (and the owner, as root) ...
    assert _mode(data / "real") == 0o775 and _mode(data / "real" / "own.txt") == 0o775
    if ROOT:
        assert (data / "real" / "own.txt").stat().st_uid == APP_UID
    # ... and neither the links nor what they point to changed
    assert _mode(shadow) == 0o640 and shadow.stat().st_uid == os.geteuid()
    for p in (tree, tree / "deep", tree / "deep" / "file"):
        assert _mode(p) == 0o700 and p.stat().st_uid == os.geteuid(), p
    if ROOT:
        assert (data / "passwd").lstat().st_uid == 0
    assert os.readlink(data / "passwd") == str(shadow)


def test_a_linked_parent_directory_never_redirects_files(tmp_path: Path) -> None:
    volume = _volume(tmp_path)
    elsewhere = tmp_path / "etc" / "cron.d"
    elsewhere.mkdir(parents=True)
    (volume / "app").symlink_to(elsewhere)
    code, steps, _ = _run(tmp_path, """
  - name: perms
    files:
      dirs: [{path: vol/app/cache/x, mode: "0777"}]
  - name: more
    after: []
    files:
      files: [{path: vol/app/job, content: "* * * * * root touch marker\\n", mode: "0644"}]
""")
    assert code == 1
    for name in ("perms", "more"):
        assert steps[name]["error"].startswith(f"{volume / 'app'} is a symbolic link (to {elsewhere})"), steps[name]
    assert list(elsewhere.iterdir()) == []


@pytest.mark.skipif(not ROOT, reason="a directory owned by root that only root may write needs root")
def test_a_link_where_only_root_could_have_put_it_is_followed(tmp_path: Path) -> None:
    """As /var/run -> /run on Debian: the link sits in a directory owned by root that nobody else may write."""
    system = tmp_path / "var"
    system.mkdir(mode=0o755)
    system.chmod(0o755)
    real = tmp_path / "run"
    real.mkdir()
    (system / "run").symlink_to(real)
    code, steps, _ = _run(tmp_path, """
  - name: perms
    files:
      dirs: [{path: var/run/app, mode: "0750"}]
      files: [{path: var/run/app/pid, content: "1\\n"}]
""")
    assert code == 0, steps
    assert _mode(real / "app") == 0o750 and (real / "app" / "pid").read_text() == "1\n"


def test_template_and_config_never_write_through_a_linked_parent(tmp_path: Path) -> None:
    volume = _volume(tmp_path)
    elsewhere = tmp_path / "etc" / "profile.d"
    elsewhere.mkdir(parents=True)
    (volume / "conf").symlink_to(elsewhere)
    document = tmp_path / "app.json"
    document.write_text('{"a": 1}\n')
    code, steps, _ = _run(tmp_path, f"""
  - name: tpl
    template: {{inline: "x=1\\n", dest: vol/conf/app.sh}}
  - name: many
    after: []
    templates: [{{inline: "y=1\\n", dest: vol/conf/b.sh}}]
  - name: cfg
    after: []
    config: {{url: "file://{document}", dest: vol/conf/app.json}}
""")
    assert code == 1
    for name in ("tpl", "many", "cfg"):
        assert steps[name]["error"].startswith(f"{volume / 'conf'} is a symbolic link (to {elsewhere})"), steps[name]
    assert list(elsewhere.iterdir()) == []  # no file, no temporary file


def test_a_link_planted_at_dest_is_refused_and_not_followed(tmp_path: Path) -> None:
    volume, shadow = _volume(tmp_path), _shadow(tmp_path)
    (volume / "app.conf").symlink_to(shadow)
    (volume / "same.conf").symlink_to(shadow)
    (volume / "cfg.json").symlink_to(shadow)
    document = tmp_path / "app.json"
    document.write_text('{"a": 1}\n')
    code, steps, _ = _run(tmp_path, """
  - name: tpl
    template: {inline: "x=1\\n", dest: vol/app.conf, mode: "0666"}
  - name: same
    after: []
    template: {inline: "root:$6$secret-hash:19000::::::\\n", dest: vol/same.conf, mode: "0666"}
  - name: cfg
    after: []
    config: {url: "file://{document}", dest: vol/cfg.json, mode: "0666"}
""".replace("{document}", str(document)))
    assert code == 1
    for name in ("tpl", "same", "cfg"):
        link = volume / {"tpl": "app.conf", "same": "same.conf", "cfg": "cfg.json"}[name]
        assert steps[name]["error"].startswith(f"{link} is a symbolic link (to {shadow})"), steps[name]
    assert _mode(shadow) == 0o640 and shadow.read_text() == "root:$6$secret-hash:19000::::::\n"
    assert all((volume / n).is_symlink() for n in ("app.conf", "same.conf", "cfg.json"))


def test_include_never_follows_a_link_out_of_the_template_directory(tmp_path: Path) -> None:
    templates = _volume(tmp_path, "templates")
    secret = tmp_path / "environ"
    secret.write_text("VAULT_TOKEN=hvs.canary-token-7f3a\n")
    (templates / "main.j2").write_text("head\n{% include 'leak.txt' %}tail\n")
    (templates / "leak.txt").symlink_to(secret)
    # a ConfigMap volume is made of links inside the directory: those are fine
    (templates / "..data").mkdir()
    (templates / "..data" / "part.j2").write_text("part={{ x }}\n")
    (templates / "part.j2").symlink_to("..data/part.j2")
    (templates / "ok.j2").write_text("{% include 'part.j2' %}")
    code, steps, _ = _run(tmp_path, """
  - name: ok
    template: {source: templates/ok.j2, dest: out/ok.conf, vars: {x: "1"}}
  - name: leak
    after: []
    template: {source: templates/main.j2, dest: out/leak.conf}
""")
    assert code == 1
    assert (tmp_path / "out" / "ok.conf").read_text() == "part=1\n"  # positive control: includes work
    assert steps["ok"]["status"] == "succeeded"
    error = steps["leak"]["error"]
    assert "leak.txt" in error and "symbolic link" in error and "outside" in error, error
    assert "canary" not in error
    assert not (tmp_path / "out" / "leak.conf").exists()


def test_a_template_that_reads_a_secret_is_written_0400(tmp_path: Path) -> None:
    """docs/reference/spec.md: mode "0400" when secrets is given; files: are documents whose values are treated as
    secrets; and an output that holds a registered secret is one too. Each case alone (the others would cover it)."""
    (tmp_path / "token").write_text("s3cr3t-canary\n")
    (tmp_path / "app.json").write_text('{"api_key": "k3y-canary"}\n')
    token = tmp_path / "token"
    code, steps, _ = _run(tmp_path, f"""
  - name: secret
    template: {{inline: "t={{{{ token|length }}}}", dest: out/a.conf, secrets: {{token: {{file: {token}}}}}}}
  - name: doc
    after: []
    template: {{inline: "k={{{{ app.api_key|length }}}}", dest: out/b.conf, files: {{app: {tmp_path / 'app.json'}}}}}
  - name: plain
    after: []
    template: {{inline: "p=1", dest: out/c.conf}}
  - name: given
    after: []
    template: {{inline: "k={{{{ app.api_key }}}}", dest: out/d.conf, mode: "0640",
               files: {{app: {tmp_path / 'app.json'}}}}}
  - name: copied
    after: []
    templates:
      - {{inline: "t={{{{ token }}}}", dest: out/e1.conf, mode: "0600", secrets: {{token: {{file: {token}}}}}}}
      - {{inline: "copy=${{TOKEN}}", dest: out/e2.conf}}
""", TOKEN="s3cr3t-canary")
    assert code == 0, steps
    assert (tmp_path / "out" / "b.conf").read_text() == "k=10"  # the secret's length: not the secret itself
    assert (tmp_path / "out" / "e2.conf").read_text() == "copy=s3cr3t-canary"
    names = ("a.conf", "b.conf", "c.conf", "d.conf", "e2.conf")
    modes = {n: _mode(tmp_path / "out" / n) for n in names}
    assert modes == {"a.conf": 0o400, "b.conf": 0o400, "c.conf": 0o644, "d.conf": 0o640, "e2.conf": 0o400}


def test_a_template_directory_reached_through_a_link_on_a_read_only_mount_is_read(tmp_path: Path) -> None:
    """A ConfigMap volume with ``items: [{key: x, path: sub/x.j2}]``: kubelet writes ``..data/sub/x.j2`` and
    ``sub -> ..data/sub`` into a directory mounted read-only (nobody can plant a link there): it is followed.
    The same tree in a directory the app can write is refused."""
    volume = _volume(tmp_path, "cm-source")
    (volume / "..data" / "sub").mkdir(parents=True)
    (volume / "..data" / "sub" / "x.j2").write_text("x={{ x }}\n")
    (volume / "sub").symlink_to("..data/sub")
    mounted = tmp_path / "cm"
    mounted.mkdir()
    bind = subprocess.run(["mount", "--bind", "-o", "ro", str(volume), str(mounted)], capture_output=True,
                          text=True)
    if bind.returncode != 0:
        pytest.skip(f"cannot make a read-only bind mount here: {bind.stderr.strip()}")
    try:
        assert subprocess.run(["touch", str(mounted / "probe")], capture_output=True).returncode != 0  # read-only
        code, steps, _ = _run(tmp_path, """
  - name: configmap
    template: {source: cm/sub/x.j2, dest: out/a.conf, vars: {x: "1"}}
  - name: writable
    after: []
    template: {source: cm-source/sub/x.j2, dest: out/b.conf, vars: {x: "1"}}
""")
    finally:
        subprocess.run(["umount", str(mounted)], check=True)
    assert code == 1
    assert steps["configmap"]["status"] == "succeeded", steps["configmap"]
    assert (tmp_path / "out" / "a.conf").read_text() == "x=1\n"
    assert steps["writable"]["error"].startswith(f"template cm-source/sub/x.j2: {volume / 'sub'} is a symbolic "
                                                 "link (to ..data/sub)"), steps["writable"]


def test_check_online_names_the_link_run_would_refuse(tmp_path: Path) -> None:
    volume, shadow = _volume(tmp_path), _shadow(tmp_path)
    (volume / "app.log").symlink_to(shadow)
    (volume / "conf").symlink_to(tmp_path / "etc")
    spec = write_spec(tmp_path, """
        version: 1
        name: links
        steps:
          - name: at
            files: {files: [{path: vol/app.log, mode: "0666"}]}
          - name: on-the-way
            files: {dirs: [{path: vol/conf/new/x}]}
          - name: fine
            files: {dirs: [{path: vol/real, mode: "0755"}]}
    """)
    result = run_cli("check", str(spec), "--online", timeout=60)
    assert result.code == 1, result.output
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "fine" in lines and "problem" not in lines["fine"], result.stdout  # positive control
    assert f"{volume / 'app.log'} is a symbolic link (to {shadow})" in lines["at"], result.stdout
    assert f"{volume / 'conf'} is a symbolic link (to {tmp_path / 'etc'})" in lines["on-the-way"], result.stdout
    assert _mode(shadow) == 0o640 and not (tmp_path / "etc" / "new").exists()
