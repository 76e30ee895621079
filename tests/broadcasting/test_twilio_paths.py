"""The Twilio webhook paths (broadcasting/twilio/paths.py) and the panel's routes name the same
URLs, both ways, and every URL we hand Twilio is one of them.

Twilio knows our URLs only from what we gave it (status callbacks, TwiML) and from number
configurations made by hand: a route that moved, or a URL spelled differently where it is built,
would lose callbacks without an error anywhere. These tests hold the constants against the
Flask app's URL map, the way a Twilio request finds its view.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask

from broadcasting import store
from broadcasting.twilio import TwilioSms, TwilioVoice, TwilioWebhooks, callback_base, paths
from burgernet.db import session_scope
from burgernet.domain import Channel
from burgernet.models import Action
from callback_api.app import create_app
from composition.context import Context
from recordings.messages import recorded_message_path
from tests.broadcasting.conftest import Crowd

IMPLICIT_METHODS = {"HEAD", "OPTIONS"}  # Flask adds these to every GET route / every route


@pytest.fixture
def app(bn_context: Context) -> Flask:
    return create_app(bn_context.settings, context=bn_context, config={"TESTING": True})


def twilio_routes(app: Flask) -> dict[str, set[str]]:
    """Every route under /twilio/ with the methods it was registered for."""
    return {
        rule.rule: set(rule.methods or ()) - IMPLICIT_METHODS
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(paths.PREFIX)
    }


def route_of(app: Flask, url: str, method: str) -> str:
    """The rule a request to ``url`` lands on, as Flask matches it."""
    rule, _ = app.url_map.bind("callback.invalid").match(urlsplit(url).path, method=method, return_rule=True)
    return rule.rule


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_every_path_constant_is_a_route_with_its_methods(app: Flask) -> None:
    routes = twilio_routes(app)
    for path in paths.ALL:
        assert path.rule.startswith(paths.PREFIX)
        assert routes.get(path.rule) == set(path.methods), path.rule


def test_every_twilio_route_is_a_path_constant(app: Flask) -> None:
    assert set(twilio_routes(app)) == {path.rule for path in paths.ALL}
    assert len(paths.ALL) == len({path.rule for path in paths.ALL})


def test_only_unsigned_paths_answer_without_a_signature(app: Flask) -> None:
    client = app.test_client()
    for path in paths.ALL:
        url = path.url("", action_id=1, language="nl")
        for method in path.methods:
            status = client.open(url, method=method).status_code
            assert (status == 403) == path.signed, f"{method} {path.rule}: {status}"


def test_the_urls_of_sent_messages_and_calls_are_the_paths(app: Flask, bn_context: Context) -> None:
    settings = bn_context.settings
    base = callback_base(settings)
    sms, voice = TwilioSms(settings), TwilioVoice(settings)
    for url, path in (
        (sms.status_callback_url(7), paths.SMS_STATUS),
        (voice.alert_url(7), paths.VOICE_ALERT),
        (voice.status_callback_url(7), paths.VOICE_STATUS),
    ):
        assert url.startswith(base + paths.PREFIX)
        assert route_of(app, url, "POST") == path.rule
        assert query(url) == {paths.DELIVERY_ARG: ["7"]}
    # The URLs as Twilio's configurations hold them: unchanged.
    assert sms.status_callback_url(7) == f"{base}/twilio/sms/status?delivery=7"
    assert voice.alert_url(7) == f"{base}/twilio/voice/alert?delivery=7"
    assert voice.status_callback_url(7) == f"{base}/twilio/voice/status?delivery=7"


def test_the_urls_in_the_alert_twiml_are_the_paths(app: Flask, bn_context: Context, crowd: Crowd) -> None:
    (participant_id,) = crowd.add(1, voice=True)
    action_id = crowd.action(start=False)
    with session_scope(bn_context.sessions) as session:
        action = session.get(Action, action_id)
        assert action is not None
        broadcast = store.new_broadcast(session, action=action, kind="alert", message="")
        (delivery_id,) = store.add_deliveries(session, broadcast, {Channel.VOICE: [participant_id]}).queued[
            Channel.VOICE
        ]
    recording = recorded_message_path(action_id, None, settings=bn_context.settings)
    recording.parent.mkdir(parents=True, exist_ok=True)
    recording.write_bytes(b"RIFF")

    root = ET.fromstring(TwilioWebhooks.for_services(bn_context).alert(delivery_id, {}, "1"))
    gather, play, redirect = root.find("Gather"), root.find("Gather/Play"), root.find("Redirect")
    assert gather is not None and play is not None and redirect is not None
    assert play.text and redirect.text
    gather_url, audio_url, again_url = gather.get("action", ""), play.text, redirect.text

    assert route_of(app, gather_url, "POST") == paths.VOICE_ALERT.rule
    assert query(gather_url) == {paths.DELIVERY_ARG: [str(delivery_id)]}
    assert route_of(app, again_url, "POST") == paths.VOICE_ALERT.rule
    assert query(again_url) == {paths.DELIVERY_ARG: [str(delivery_id)], paths.PLAY_ARG: ["2"]}
    assert route_of(app, audio_url, "GET") == paths.VOICE_AUDIO.rule
    # Twilio fetches the audio unsigned: the route serves it with the token the TwiML carries.
    served = app.test_client().get(urlsplit(audio_url).path, query_string=urlsplit(audio_url).query)
    assert served.status_code == 200 and served.data == b"RIFF"
