"""Settings → Alert retries: admins only; a change is checked, saved, audited and shown; back to
the default; bad input changes nothing; the page speaks Dutch."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from burgernet.db import session_scope
from burgernet.models import AlertOutcomePolicy, AuditEvent
from composition.context import Context
from tests.panel.conftest import audit_count, csrf_token

LIST = "/settings/alert-policies"


def _form(client: FlaskClient, path: str, **fields: str) -> dict[str, str]:
    return {"csrf_token": csrf_token(client, path), "do": "save", **fields}


def _stored(context: Context) -> dict[str, tuple[int, float, float, str]]:
    with session_scope(context.sessions) as session:
        return {
            row.outcome: (row.attempts, row.backoff_seconds, row.backoff_multiplier, row.when_exhausted)
            for row in session.scalars(select(AlertOutcomePolicy))
        }


@pytest.mark.parametrize(
    ("role", "status"), [(None, 302), ("operator", 403), ("viewer", 403), ("admin", 200)]
)
def test_only_admins_see_the_page(
    client_for: Callable[[str | None], FlaskClient], role: str | None, status: int
) -> None:
    client = client_for(role)
    assert client.get(LIST).status_code == status
    assert client.get(f"{LIST}/busy").status_code == status


def test_operators_cannot_change_a_policy(
    client_for: Callable[[str | None], FlaskClient], bn_context: Context
) -> None:
    operator = client_for("operator")
    token = csrf_token(operator, "/settings/regions")  # the operator's own session token
    answer = operator.post(
        f"{LIST}/busy",
        data={"csrf_token": token, "attempts": "5", "backoff_seconds": "10", "backoff_multiplier": "1"},
    )
    assert answer.status_code == 403 and _stored(bn_context) == {}


def test_the_list_shows_the_settings_defaults_and_links_from_the_settings_tabs(
    client_for: Callable[[str | None], FlaskClient],
) -> None:
    page = client_for("admin").get(LIST, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Busy" in page and "No answer" in page and "Answering machine" in page
    assert "120 s" in page and "900 s" in page  # busy and no answer: their own waits
    assert f'href="{LIST}"' in page  # the settings navigation
    tabs = client_for("admin").get("/settings/regions").get_data(as_text=True)
    assert f'href="{LIST}"' in tabs
    assert f'href="{LIST}"' not in client_for("operator").get("/settings/regions").get_data(as_text=True)


def test_an_admin_changes_a_policy_and_it_is_audited(
    client_for: Callable[[str | None], FlaskClient], bn_context: Context
) -> None:
    client = client_for("admin")
    path = f"{LIST}/no_answer"
    answer = client.post(
        path,
        data=_form(client, path, attempts="3", backoff_seconds="600", backoff_multiplier="1.5", then="done"),
    )
    assert answer.status_code == 302 and answer.headers["Location"].endswith(LIST)
    assert _stored(bn_context) == {"no_answer": (3, 600.0, 1.5, "done")}
    with session_scope(bn_context.sessions) as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.entity == "alert_outcome_policy")).one()
    assert (event.actor, event.verb, event.entity_id) == ("admin", "save", "no_answer")
    assert (event.source or "").startswith("web")
    assert '"attempts": 3' in (event.detail or "") and '"before": null' in (event.detail or "")
    listed = client.get(LIST, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "No answer*" in listed and "600 s" in listed


def test_back_to_the_default_is_audited_too(
    client_for: Callable[[str | None], FlaskClient], bn_context: Context
) -> None:
    client = client_for("admin")
    path = f"{LIST}/busy"
    client.post(
        path,
        data=_form(client, path, attempts="2", backoff_seconds="60", backoff_multiplier="1", then="done"),
    )
    answer = client.post(path, data={"csrf_token": csrf_token(client, path), "do": "reset"})
    assert answer.status_code == 302 and _stored(bn_context) == {}
    assert audit_count(bn_context, entity="alert_outcome_policy", verb="reset", actor="admin") == 1


def test_a_failed_call_is_never_repeated_only_what_follows_is_chosen(
    client_for: Callable[[str | None], FlaskClient], bn_context: Context
) -> None:
    client = client_for("admin")
    path = f"{LIST}/failed"
    form = client.get(path, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "never repeated" in form and 'name="attempts" value="1"' in form
    answer = client.post(path, data=_form(client, path, attempts="4", backoff_seconds="60", then="done"))
    assert answer.status_code == 302
    assert _stored(bn_context) == {"failed": (1, 0.0, 1.0, "done")}  # attempts stays 1


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"attempts": "0", "backoff_seconds": "60", "backoff_multiplier": "1"}, "Calls at most"),
        ({"attempts": "3", "backoff_seconds": "0", "backoff_multiplier": "1"}, "at least one second"),
        ({"attempts": "3", "backoff_seconds": "60", "backoff_multiplier": "0.5"}, "multiplier"),
        ({"attempts": "10", "backoff_seconds": "3600", "backoff_multiplier": "10"}, "last wait"),
        ({"attempts": "", "backoff_seconds": "60", "backoff_multiplier": "1"}, "Calls at most"),
    ],
)
def test_bad_input_is_refused_with_the_reason_and_changes_nothing(
    client_for: Callable[[str | None], FlaskClient], bn_context: Context, fields: dict[str, str], words: str
) -> None:
    client = client_for("admin")
    path = f"{LIST}/busy"
    answer = client.post(
        path, data=_form(client, path, then="fall_back", **fields), headers={"Accept-Language": "en"}
    )
    assert answer.status_code == 400 and words in answer.get_data(as_text=True)
    assert _stored(bn_context) == {}
    with session_scope(bn_context.sessions) as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.entity == "alert_outcome_policy")
            )
            == 0
        )


def test_an_unknown_outcome_is_not_found(client_for: Callable[[str | None], FlaskClient]) -> None:
    assert client_for("admin").get(f"{LIST}/answered").status_code == 404


def test_the_page_speaks_dutch(client_for: Callable[[str | None], FlaskClient]) -> None:
    page = client_for("admin").get(LIST, headers={"Accept-Language": "nl"}).get_data(as_text=True)
    assert "Herhaalpogingen" in page and "In gesprek" in page and "Alert per sms sturen" in page
