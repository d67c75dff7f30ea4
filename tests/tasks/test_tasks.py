"""The public tasks in a user's own flow, against a real Prefect server."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.conftest import PrefectServer, free_port
from tests.vaultserver import VaultState, vault_server

CANARY = "pw-canary-task-31337"
VAULT_TOKEN = "hvs.task-token-canary-31338"
VAULT_VALUE = "task-vault-value-canary-31339"


def test_tasks_in_a_user_flow(prefect_server: PrefectServer, tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    open_port, closed_port = listener.getsockname()[1], free_port()
    (tmp_path / "source.json").write_text('{"db": {"host": "db", "port": 5432}}')
    script = tmp_path / "user_flow.py"
    script.write_text(textwrap.dedent(f"""
        import os
        from prefect import flow
        from prefect_init.tasks.command import run_command
        from prefect_init.tasks.config import fetch_config
        from prefect_init.tasks.files import ensure_files
        from prefect_init.tasks.validate import validate_files
        from prefect_init.tasks.vault import read_vault_secret, vault_login, write_secret_file
        from prefect_init.tasks.wait import wait_for_postgres, wait_for_tcp

        @flow(name="user-flow", flow_run_name="user-flow-run")
        def user_flow():
            ensure_files({{"dirs": [{{"path": "{tmp_path}/made", "mode": "0750"}}]}})
            run_command(["sh", "-c", "echo built > {tmp_path}/made/out"])
            wait_for_tcp("127.0.0.1:{open_port}", timeout=10)
            fetch_config("file://{tmp_path}/source.json", "{tmp_path}/made/app.json", required=["db.host"])
            validate_files("{tmp_path}/made/app.json", required=["db.host", "db.port"])
            session = vault_login(os.environ["TEST_VAULT"], {{"token_file": "{tmp_path}/vault-token"}})
            secret = read_vault_secret(session, "secret/data/myapp", required=["api_key"])
            write_secret_file(secret, "{tmp_path}/made/secret.env", format="env")
            wait_for_postgres(os.environ["TEST_DSN"], timeout=1)

        user_flow()
    """))
    (tmp_path / "vault-token").write_text(VAULT_TOKEN)
    state = VaultState()
    state.tokens[VAULT_TOKEN] = ["secret/"]
    state.put_kv2("secret/myapp", {"api_key": VAULT_VALUE})
    with vault_server(state) as vault:
        env = prefect_server.client_env(TEST_DSN=f"postgresql://app:{CANARY}@127.0.0.1:{closed_port}/app",
                                        TEST_VAULT=vault.address)
        proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    listener.close()
    assert proc.returncode != 0  # the postgres wait fails, so the flow fails
    assert (tmp_path / "made/out").read_text() == "built\n"
    assert oct((tmp_path / "made").stat().st_mode & 0o777) == "0o750"
    runs = prefect_server.post("/flow_runs/filter", {"flow_runs": {"name": {"any_": ["user-flow-run"]}}})
    assert runs and runs[0]["state_type"] == "FAILED"
    tasks = prefect_server.post("/task_runs/filter", {"flow_runs": {"id": {"any_": [runs[0]["id"]]}}})
    states = {t["name"].rsplit("-", 1)[0]: t["state_type"] for t in tasks}
    assert states == {"ensure-files": "COMPLETED", "run-command": "COMPLETED", "wait-for-tcp": "COMPLETED",
                      "fetch-config": "COMPLETED", "validate-files": "COMPLETED", "vault-login": "COMPLETED",
                      "vault-read": "COMPLETED", "vault-write": "COMPLETED", "wait-for-postgres": "FAILED"}
    assert (tmp_path / "made/secret.env").read_text() == f"api_key='{VAULT_VALUE}'\n"
    assert (tmp_path / "made/app.json").read_text() == (tmp_path / "source.json").read_text()
    assert "postgresql://app:****@127.0.0.1" in proc.stderr
    # the masked DSN must be in the server's logs too (positive control of the scan below)
    deadline = time.monotonic() + 20
    while True:
        logs = str(prefect_server.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [runs[0]["id"]]}},
                                                        "limit": 200}))
        if "postgresql://app:****@127.0.0.1" in logs or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert "postgresql://app:****@127.0.0.1" in logs
    for canary in (CANARY, VAULT_TOKEN, VAULT_VALUE):
        assert canary not in proc.stdout + proc.stderr + logs
    prefect_server.assert_database_lacks([CANARY, VAULT_TOKEN, VAULT_VALUE],
                                         recorded=["postgresql://app:****@127.0.0.1", "user-flow-run"])
