"""Finding the API and the UI without importing prefect."""

from __future__ import annotations

import pytest

from prefect_init.prefect_adapter.discovery import ui_url

CLOUD = "https://api.prefect.cloud/api/accounts/a1b2/workspaces/c3d4"


def test_the_ui_link_is_found_as_prefect_finds_it(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.delenv("PREFECT_UI_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))  # no profile
    assert ui_url("http://prefect:4200/api", "runs/flow-run/x") == "http://prefect:4200/runs/flow-run/x"
    assert ui_url(CLOUD, "/runs/flow-run/x") == "https://app.prefect.cloud/account/a1b2/workspace/c3d4/runs/flow-run/x"
    monkeypatch.setenv("PREFECT_UI_URL", "https://ui.example/")
    assert ui_url("http://prefect:4200/api", "runs/flow-run/x") == "https://ui.example/runs/flow-run/x"
