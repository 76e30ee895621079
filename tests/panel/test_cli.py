"""``burgernet web users-create`` / ``token-create``: users usable in the panel and the API."""

from __future__ import annotations

from click.testing import CliRunner
from flask import Flask

from callback_api.cli import web
from composition.context import Context
from tests.panel.conftest import login


def test_users_create_then_login_and_token(bn_context: Context, app: Flask) -> None:
    runner = CliRunner()
    result = runner.invoke(
        web,
        ["users-create", "anouk", "--role", "centralist", "--with-token"],
        input="long enough secret\nlong enough secret\n",
        obj=bn_context,
    )
    assert result.exit_code == 0, result.output
    token = result.output.strip().rsplit(" ", 1)[1]
    assert login(app.test_client(), "anouk", "long enough secret") == 302
    response = app.test_client().get("/api/v1/actions", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200

    again = runner.invoke(
        web,
        ["users-create", "anouk", "--role", "viewer"],
        input="long enough secret\nlong enough secret\n",
        obj=bn_context,
    )
    assert again.exit_code == 2 and "already exists" in again.output
    short = runner.invoke(
        web, ["users-create", "bram", "--role", "viewer"], input="short\nshort\n", obj=bn_context
    )
    assert short.exit_code == 2 and "at least 12" in short.output

    new_token = runner.invoke(web, ["token-create", "anouk"], obj=bn_context)
    assert new_token.exit_code == 0
    old = app.test_client().get("/api/v1/actions", headers={"Authorization": f"Bearer {token}"})
    assert old.status_code == 401  # the old token stopped working
