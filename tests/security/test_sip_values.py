"""Values that reach Asterisk's files, and numbers the system dials: refused when unsafe.

A newline in a centralist's name, contact or endpoint would add configuration of its own to
pjsip.conf; the core refuses it, and the renderer refuses it again if one slips into the data.
A call-back may go only to a Dutch fixed or mobile number: the core's validator and the
dialplan say so independently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import create_engine, inspect, select, text

from asterisk_conf.render import AsteriskPlan, RenderError, render
from broadcasting.channels.base import Message
from broadcasting.channels.voice_asterisk import AsteriskVoiceSender
from broadcasting.ratelimit import SharedRate, SharedSlots
from broadcasting.store import DeliveryJob
from burgernet.centralists import CentralistError, sip_digest
from burgernet.db import session_scope, upgrade
from burgernet.domain import Channel
from burgernet.models import AuditEvent, Centralist
from burgernet.phone import NotDialable, dialable_national, is_dialable
from burgernet.settings import Settings, load_settings
from composition.context import Context
from tests.asterisk.conftest import centralist
from tests.asterisk.test_render import PATHS

INJECTION = "x\n\n[evil]\ntype = endpoint\ncontext = burgernet-freephone"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Piet\n[evil]"),
        ("name", 'Piet" <c-mn-1>'),
        ("name", "Piet; comment"),
        ("contact", "sip:c-mn-9@10.0.0.9:5060\n[evil]"),
        ("contact", "sip:c-mn-9@10.0.0.9;x=1"),
        ("endpoint", "c-mn-9\n[evil]"),
        ("endpoint", "trunk"),
        ("endpoint", "transport-udp"),
        ("endpoint", "transport-tls"),
        ("endpoint", "acl"),
        ("endpoint", "general"),
        ("endpoint", "global"),
        ("endpoint", "anonymous"),
        ("endpoint", "0612345678"),
    ],
)
def test_the_core_refuses_unsafe_centralist_values(bn_context: Context, field: str, value: str) -> None:
    values = {"endpoint": "c-mn-9", "name": "Piet", "contact": None} | {field: value}
    with pytest.raises(CentralistError):
        bn_context.centralists.add(
            endpoint=str(values["endpoint"]),
            name=str(values["name"]),
            region_code="MN",
            contact=values["contact"],
            actor="test",
        )
    with session_scope(bn_context.sessions) as session:
        assert session.scalar(select(Centralist.id).where(Centralist.sip_endpoint == "c-mn-9")) is None
    # The checks work: the same centralist with safe values is accepted.
    view = bn_context.centralists.add(
        endpoint="c-mn-9",
        name="Piet (MN)",
        region_code="MN",
        contact="sip:c-mn-9@10.0.0.9:5060",
        actor="test",
    )
    assert view.password and len(view.password) >= 20


def test_an_edit_with_a_newline_is_refused(bn_context: Context) -> None:
    for name, endpoint in (("Anna\n[evil]", "c-mn-1"), ("Anna", "c-mn-1\n[evil]"), ("Anna", "trunk")):
        with pytest.raises(CentralistError):
            bn_context.centralists.update(
                "c-mn-1", name=name, new_endpoint=endpoint, region_code="MN", on_duty=True, actor="test"
            )


def test_passwords_are_made_unique_shown_once_and_audited_without_the_secret(bn_context: Context) -> None:
    first = bn_context.centralists.rotate_password("c-mn-1", actor="test", source="test")
    second = bn_context.centralists.rotate_password("c-mn-2", actor="test", source="test")
    assert first != second and len(first) >= 20
    with session_scope(bn_context.sessions) as session:
        stored = session.scalars(
            select(Centralist.sip_md5_cred).where(Centralist.sip_md5_cred.is_not(None))
        ).all()
        audits = session.scalars(select(AuditEvent).where(AuditEvent.entity == "centralist")).all()
    assert len(set(stored)) == len(stored) and all(
        digest is not None and len(digest) == 32 for digest in stored
    )
    audited = " ".join(f"{a.verb} {a.detail}" for a in audits)
    assert "new-password" in audited and first not in audited and second not in audited
    with pytest.raises(CentralistError):
        bn_context.centralists.rotate_password("c-nobody-1", actor="test", source="test")


def _settings(tmp_path: Path, **asterisk: object) -> Settings:
    return load_settings(data_dir=tmp_path, asterisk={"sip_port": 5160, **asterisk})


@pytest.mark.parametrize(
    "bad",
    [
        {"display_name": INJECTION},
        {"contact": "sip:c-mn-1@127.0.0.1:5999\n[evil]"},
        {"endpoint": INJECTION},
        {"endpoint": "transport-udp"},
        {"md5_cred": "0123\n[evil]"},
    ],
)
def test_the_renderer_refuses_what_the_core_would_have(tmp_path: Path, bad: dict[str, str]) -> None:
    out = tmp_path / "out"
    plan = AsteriskPlan((replace(centralist("c-mn-1"), **bad),), "MN")  # type: ignore[arg-type]
    with pytest.raises(RenderError, match="not rendering"):
        render(out, _settings(tmp_path), plan, PATHS)
    assert not (out / "pjsip.conf").exists()  # nothing written, least of all an [evil] section
    render(out, _settings(tmp_path), AsteriskPlan((centralist("c-mn-1"),), "MN"), PATHS)
    assert "[evil]" not in (out / "pjsip.conf").read_text()


@pytest.mark.parametrize(
    "settings",
    [
        {"trunk_password": "pw\n[evil]"},
        {"ami_secret": "a-long-enough-secret\n[evil]"},
        {"trunk_host": "127.0.0.1\n[evil]"},
        {"centralist_networks": ["10.0.0.0/8\n[evil]"]},
        {"centralist_networks": ["not-a-network"]},
        {
            "tls_enabled": True,
            "tls_cert_file": "/nonexistent/cert.pem",
            "tls_key_file": "/nonexistent/key.pem",
        },
    ],
)
def test_the_renderer_refuses_unsafe_settings(tmp_path: Path, settings: dict[str, object]) -> None:
    with pytest.raises(RenderError, match="not rendering"):
        render(tmp_path / "out", _settings(tmp_path, **settings), AsteriskPlan((), "MN"), PATHS)


def test_rendered_files_are_0640(tmp_path: Path) -> None:
    for path in render(
        tmp_path / "out", _settings(tmp_path), AsteriskPlan((centralist("c-mn-1"),), "MN"), PATHS
    ):
        assert path.stat().st_mode & 0o777 == 0o640, path


@pytest.mark.parametrize(
    "number",
    [
        "0031201234567",
        "0044207123456",
        "+442071234567",
        "0900123456",
        "0906123456",
        "0909123456",
        "0800123456",
        "112",
        "144",
        "14020",
        "0662345678",
        "0851234567",
        "06123",
        "",
    ],
)
def test_a_call_back_to_anything_but_a_dutch_fixed_or_mobile_number_is_refused(number: str) -> None:
    assert not is_dialable(number)
    with pytest.raises(NotDialable):
        dialable_national(number)


@pytest.mark.parametrize(
    ("number", "national"),
    [
        ("0612345678", "0612345678"),
        ("+31612345678", "0612345678"),
        ("020-1234567", "0201234567"),
        ("+31 30 123 4567", "0301234567"),
        ("0687654321", "0687654321"),
    ],
)
def test_dutch_fixed_and_mobile_numbers_are_dialled(number: str, national: str) -> None:
    assert dialable_national(number) == national


def test_migration_0007_hashes_the_plaintext_passwords_and_drops_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0006")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO regions (code, name) VALUES ('MN', 'Midden-Nederland')"))
        region = connection.execute(text("SELECT id FROM regions WHERE code = 'MN'")).scalar_one()
        for endpoint, password in (("c-mn-1", "oud-wachtwoord-1"), ("c-mn-2", None)):
            connection.execute(
                text(
                    "INSERT INTO centralists (name, sip_endpoint, sip_password, region_id, on_duty, active) "
                    "VALUES (:name, :endpoint, :password, :region, 1, 1)"
                ),
                {"name": endpoint.upper(), "endpoint": endpoint, "password": password, "region": region},
            )
    upgrade(url, "0007")
    with engine.connect() as connection:
        rows: dict[str, str | None] = dict(
            connection.execute(text("SELECT sip_endpoint, sip_md5_cred FROM centralists")).all()
        )
        columns = {column["name"] for column in inspect(connection).get_columns("centralists")}
    engine.dispose()
    assert rows == {"c-mn-1": sip_digest("c-mn-1", "burgernet", "oud-wachtwoord-1"), "c-mn-2": None}
    assert "sip_password" not in columns


class _RecordingAmi:
    """Stands in for AMI: records every action it is asked to send (none is expected)."""

    def __init__(self) -> None:
        self.actions: list[Mapping[str, object]] = []

    def on(self, pattern: str, callback: Callable[[Mapping[str, object]], Awaitable[None]]) -> None:
        pass

    async def send_action(
        self, action: Mapping[str, object], timeout: float = 10.0, as_list: bool | None = None
    ) -> object:
        self.actions.append(action)
        return {"Response": "Success"}

    async def close(self) -> None:
        pass


class _Slots:
    def __init__(self) -> None:
        self.released: list[str] = []

    async def release(self, holder: str) -> None:
        self.released.append(holder)


@pytest.mark.parametrize("number", ["+442071234567", "+31900123456", "+31662345678", "+3114020"])
def test_an_alert_call_to_a_foreign_or_premium_number_is_never_originated(
    tmp_path: Path, number: str
) -> None:
    ami, slots = _RecordingAmi(), _Slots()
    sender = AsteriskVoiceSender(
        _settings(tmp_path), ami, cast(SharedSlots, slots), cast(SharedRate, None), lambda _job, _m: "beep"
    )
    job = DeliveryJob(
        1,
        1,
        7,
        None,
        "alert",
        Channel.VOICE,
        1,
        3,
        number,
        None,
        "nl",
        "m",
        "suspect",
        "t",
        "",
        "",
        "",
        "MN",
        None,
        "sending",
    )
    outcome = asyncio.run(sender.send(job, Message("s", "b"), "holder-1"))
    assert outcome.status == "failed" and not outcome.retry and number in (outcome.error or "")
    assert ami.actions == [] and slots.released == ["holder-1"]
