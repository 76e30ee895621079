"""Four-eyes approval from the command line: the approver flag, request, list, approve, refuse."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from burgernet.db import session_scope
from burgernet.domain import Role
from burgernet.models import User
from burgernet.settings import Settings
from composition.cli import main
from composition.context import Context


@pytest.fixture
def runner(bn_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("BURGERNET_DATA_DIR", str(bn_settings.data_dir))
    monkeypatch.setenv("BURGERNET_DATABASE__URL", bn_settings.database_url)
    monkeypatch.setenv("BURGERNET_REDIS__URL", bn_settings.redis.url)
    monkeypatch.setenv("BURGERNET_REDIS__KEY_PREFIX", bn_settings.redis.key_prefix)
    return CliRunner()


def _create(runner: CliRunner, *extra: str) -> str:
    made = runner.invoke(
        main,
        [
            *("action", "create", "--type", "amber_alert", "--title", "AMBER Alert Sanne"),
            *("--region", "MN", "--national", *extra),
        ],
    )
    found = re.search(r"action (\d+)", made.output)
    assert found, made.output
    return found.group(1)


def test_an_amber_alert_starts_from_the_command_line_only_through_an_approver(
    runner: CliRunner, bn_context: Context
) -> None:
    with session_scope(bn_context.sessions) as session:
        for name, role in (("anouk", Role.OPERATOR), ("bram", Role.OPERATOR), ("vera", Role.VIEWER)):
            session.add(User(username=name, password_hash="!", role=role.value))
    assert runner.invoke(main, ["web", "approver", "bram"]).output.strip() == "user bram is an approver"
    refused = runner.invoke(main, ["web", "approver", "vera"])
    assert refused.exit_code == 2 and "only an admin, operator or centralist" in refused.output

    started = runner.invoke(
        main,
        [
            *("action", "create", "--type", "amber_alert", "--title", "Nu", "--region", "MN"),
            *("--national", "--start"),
        ],
    )
    assert started.exit_code == 2 and "request approval" in started.output

    action_id = _create(runner)
    asked = runner.invoke(main, ["action", "request-approval", action_id, "--actor", "anouk"])
    assert asked.exit_code == 0 and "people" in asked.output, asked.output
    request_id = re.search(r"approval request (\d+)", asked.output).group(1)  # type: ignore[union-attr]
    assert f"action {action_id}" in runner.invoke(main, ["action", "approvals"]).output

    own = runner.invoke(main, ["action", "approve", request_id, "--actor", "anouk"])
    assert own.exit_code == 2 and "another approver" in own.output
    approved = runner.invoke(main, ["action", "approve", request_id, "--actor", "bram"])
    assert approved.exit_code == 0 and "approved by bram" in approved.output
    assert bn_context.actions.get(int(action_id)).status == "active"

    second = _create(runner)
    asked = runner.invoke(main, ["action", "request-approval", second, "--actor", "anouk"])
    request_id = re.search(r"approval request (\d+)", asked.output).group(1)  # type: ignore[union-attr]
    refused = runner.invoke(main, ["action", "refuse", request_id, "--actor", "bram", "--reason", "Dubbel"])
    assert refused.exit_code == 0 and "stays a draft" in refused.output
    assert "no approval requests waiting" in runner.invoke(main, ["action", "approvals"]).output
