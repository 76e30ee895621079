"""Message templates: defaults in both languages, stored templates, refused placeholders, SMS length."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from burgernet.db import session_scope
from burgernet.domain import ActionType, Channel, Language
from burgernet.message_templates import (
    KINDS,
    PLACEHOLDERS,
    SMS_LIMIT,
    TemplateError,
    TemplateKey,
    check_template,
    render_message,
    reset_template,
    save_template,
)
from burgernet.models import Base, MessageTemplate
from composition.context import Context

FIELDS = {
    "description": "Meisje, 8 jaar, rode jas.",
    "area": "Utrecht-Oost",
    "outcome": "Gevonden",
    "result_message": "Zij is ongedeerd thuis.",
    "free_number": "0800-0011",
}


def render(context: Context, **key: str) -> tuple[str | None, str]:
    values = {"action_type": "missing_child", "kind": "alert", "channel": "sms", "language": "nl", **key}
    with session_scope(context.sessions) as session:
        message = render_message(session, fields=dict(FIELDS), **values)
    return message.subject, message.body


def test_every_default_renders_in_both_languages(bn_context: Context) -> None:
    for action_type in ActionType:
        for kind in KINDS:
            for channel in Channel:
                for language in Language:
                    subject, body = render(
                        bn_context,
                        action_type=action_type.value,
                        kind=kind,
                        channel=channel.value,
                        language=language.value,
                    )
                    assert "{" not in body and "}" not in body
                    assert "0800-0011" in body or kind == "result"
                    assert (subject is not None) == (channel is Channel.EMAIL)
                    if channel is Channel.SMS:
                        assert len(body) <= SMS_LIMIT, body


def test_dutch_and_english_defaults_differ_and_fill_the_fields(bn_context: Context) -> None:
    _, dutch = render(bn_context)
    _, english = render(bn_context, language="en")
    assert dutch.startswith("Burgernet vermist kind: Meisje, 8 jaar, rode jas.")
    assert "Gezien? Bel gratis 0800-0011" in dutch
    assert "missing child" in english and "Call free 0800-0011" in english
    subject, email = render(bn_context, channel="email", kind="result", language="en")
    assert subject == "Burgernet: search ended (missing child, Utrecht-Oost)"
    assert "Outcome: Gevonden" in email and "Zij is ongedeerd thuis." in email


def test_missing_fields_leave_no_stray_punctuation_and_free_number_defaults(bn_context: Context) -> None:
    with session_scope(bn_context.sessions) as session:
        message = render_message(
            session,
            action_type="vehicle",
            kind="result",
            channel="voice",
            language="nl",
            fields={"area": "Delft"},
        )
    assert ". ." not in message.body and ".." not in message.body
    assert "voertuig" in message.body
    with session_scope(bn_context.sessions) as session:
        alert = render_message(
            session, action_type="vehicle", kind="alert", channel="sms", language="en", fields={}
        )
    assert alert.body.endswith("0800-0011")


def test_long_sms_descriptions_are_shortened_not_the_free_number(bn_context: Context) -> None:
    with session_scope(bn_context.sessions) as session:
        message = render_message(
            session,
            action_type="suspect",
            kind="alert",
            channel="sms",
            language="nl",
            fields={"description": "Man met zwarte jas " * 20, "area": "Rotterdam"},
        )
    assert len(message.body) <= SMS_LIMIT
    assert "..." in message.body and message.body.endswith("Bel gratis 0800-0011")


def test_a_stored_template_replaces_the_default_and_reset_brings_it_back(bn_context: Context) -> None:
    key = TemplateKey("amber_alert", "alert", "sms", "nl")
    with session_scope(bn_context.sessions) as session:
        save_template(
            session, key, subject=None, body="AMBER Alert! {description} Bel {free_number}.", actor="t"
        )
    _, body = render(bn_context, action_type="amber_alert")
    assert body == "AMBER Alert! Meisje, 8 jaar, rode jas. Bel 0800-0011."
    _, other = render(bn_context, action_type="amber_alert", language="en")
    assert other.startswith("Burgernet AMBER Alert")  # only that one key changed
    with session_scope(bn_context.sessions) as session:
        save_template(session, key, subject=None, body="Tweede versie {area}", actor="t")  # replaces in place
        assert session.scalar(select(func.count()).select_from(MessageTemplate)) == 1
        assert reset_template(session, key)
    _, again = render(bn_context, action_type="amber_alert")
    assert again.startswith("Burgernet AMBER Alert:")


@pytest.mark.parametrize(
    ("channel", "subject", "body", "message"),
    [
        ("sms", None, "Zie {omschrijving}", "unknown placeholder {omschrijving}"),
        ("sms", None, "Zie {description.__class__}", "unknown placeholder {description.__class__}"),
        ("sms", None, "Zie {description!r}", "unknown placeholder {description!r}"),
        ("sms", None, "Zie {description:>40}", "unknown placeholder {description:>40}"),
        ("sms", None, "Zie {description", "brace"),
        ("sms", None, "Zie }", "brace"),
        ("sms", None, "   ", "empty"),
        ("email", "", "Tekst {area}", "needs a subject"),
        ("email", "Over {plaats}", "Tekst", "unknown placeholder {plaats}"),
        ("voice", "Onderwerp", "Tekst", "only e-mail has a subject"),
    ],
)
def test_bad_templates_are_refused_with_a_clear_message(
    channel: str, subject: str | None, body: str, message: str
) -> None:
    with pytest.raises(TemplateError, match=message.replace("{", r"\{").replace("(", r"\(")):
        check_template(channel, subject, body)


def test_refused_template_changes_nothing(bn_context: Context) -> None:
    key = TemplateKey("suspect", "update", "sms", "en")
    with pytest.raises(TemplateError), session_scope(bn_context.sessions) as session:
        save_template(session, key, subject=None, body="{nope}", actor="t")
    with session_scope(bn_context.sessions) as session:
        assert session.scalar(select(func.count()).select_from(MessageTemplate)) == 0


def test_literal_braces_and_every_placeholder_are_accepted() -> None:
    body = "{{x}} " + " ".join("{" + name + "}" for name in PLACEHOLDERS)
    assert check_template("sms", None, body)[1] == body


def test_unknown_key_values_are_refused(bn_context: Context) -> None:
    with pytest.raises(TemplateError, match="unknown kind"):
        render(bn_context, kind="reminder")
    with pytest.raises(TemplateError, match="unknown language"):
        render(bn_context, language="de")


def test_database_refuses_duplicate_keys_and_unknown_values(bn_context: Context) -> None:
    from datetime import UTC, datetime

    row = {"action_type": "vehicle", "kind": "alert", "channel": "sms", "language": "nl", "body": "x"}
    with session_scope(bn_context.sessions) as session:
        session.add(MessageTemplate(**row, updated_at=datetime.now(UTC)))
    with pytest.raises(IntegrityError), session_scope(bn_context.sessions) as session:
        session.add(MessageTemplate(**row, updated_at=datetime.now(UTC)))
    with pytest.raises(IntegrityError), session_scope(bn_context.sessions) as session:
        session.add(MessageTemplate(**{**row, "channel": "fax"}, updated_at=datetime.now(UTC)))


def test_migrated_schema_matches_the_models(bn_context: Context) -> None:
    with bn_context.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    mine = [d for d in diff if "message_templates" in str(d) or "'active'" in str(d)]
    assert mine == []
