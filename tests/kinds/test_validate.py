from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers import run_cli


def _run(tmp_path: Path, validate: dict[str, Any]) -> tuple[int, str, str]:
    spec = tmp_path / "init.yaml"
    spec.write_text(json.dumps({"version": 1, "name": "v", "status_file": "status.json",
                                "steps": [{"name": "check", "validate": validate}]}))
    result = run_cli("run", str(spec))
    status = json.loads((tmp_path / "status.json").read_text())["steps"][0]
    return result.code, status.get("error", ""), result.output


def test_missing_keys_all_in_one_message_without_values(tmp_path: Path) -> None:
    (tmp_path / "secrets.json").write_text(json.dumps({"api_key": "v-canary-123", "db_password": ""}))
    code, error, output = _run(tmp_path, {"file": "secrets.json",
                                          "required": ["api_key", "db_password", "redis_password"]})
    assert code == 1
    assert error == f"{tmp_path / 'secrets.json'}: missing required keys: db_password, redis_password"
    assert "v-canary-123" not in output


def test_env_yaml_toml_and_several_files(tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text("export API_KEY='abc def'\nDB_PASSWORD=x # comment\n")
    (tmp_path / "b.yaml").write_text("db: {password: x}\n")
    (tmp_path / "c.toml").write_text('[db]\npassword = "x"\n')
    code, error, _ = _run(tmp_path, {"file": ["a.env"], "required": ["API_KEY", "DB_PASSWORD"]})
    assert code == 0, error
    code, error, _ = _run(tmp_path, {"file": ["b.yaml", "c.toml"], "required": ["db.password"]})
    assert code == 0, error
    # and the negative for every format: a key that is absent, or present and empty, is named
    (tmp_path / "a.env").write_text("export API_KEY='abc def'\nDB_PASSWORD= # empty\n")
    code, error, _ = _run(tmp_path, {"file": ["a.env"], "required": ["API_KEY", "DB_PASSWORD", "REDIS_URL"]})
    assert code == 1
    assert error == f"{tmp_path / 'a.env'}: missing required keys: DB_PASSWORD, REDIS_URL"
    for name in ("b.yaml", "c.toml"):
        code, error, _ = _run(tmp_path, {"file": [name], "required": ["db.password", "db.user"]})
        assert code == 1
        assert error == f"{tmp_path / name}: missing required keys: db.user"


def test_every_file_problem_reported(tmp_path: Path) -> None:
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "broken.yaml").write_text("a: [\n")
    code, error, _ = _run(tmp_path, {"file": ["empty.json", "broken.yaml", "absent.json"]})
    assert code == 1
    lines = error.splitlines()
    assert lines[0].endswith("empty.json: is empty")
    assert "broken.yaml: not valid YAML" in lines[1] and "line 2" in lines[1]
    assert lines[2].endswith("absent.json: no such file or directory")


def test_schema(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text(json.dumps({"type": "object", "properties": {"n": {"type": "integer"}}}))
    (tmp_path / "doc.json").write_text(json.dumps({"n": "not-a-number-canary"}))
    code, error, output = _run(tmp_path, {"file": "doc.json", "schema": "s.json"})
    assert code == 1
    assert 'n: must satisfy type "integer"' in error
    assert "not-a-number-canary" not in output
