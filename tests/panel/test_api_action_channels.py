"""The REST API creates an action with the channels and urgency asked for, the template's without."""

from __future__ import annotations

from flask import Flask

from tests.panel.conftest import UTRECHT, World


def test_the_api_takes_channels_and_urgency_or_the_templates(world: World, app: Flask) -> None:
    client = app.test_client()
    headers = {"Authorization": f"Bearer {world.tokens['operator']}"}
    body = {
        "type": "vehicle",
        "title": "Gestolen rode auto",
        "region": "MN",
        "area": {"kind": "circle", "lon": UTRECHT[0], "lat": UTRECHT[1], "radius_m": 1500},
    }
    chosen = client.post(
        "/api/v1/actions", headers=headers, json={**body, "channels": ["email"], "urgency": "amber"}
    )
    assert chosen.status_code == 201, chosen.get_json()
    assert (chosen.get_json()["channels"], chosen.get_json()["urgency"]) == (["email"], "amber")
    default = client.post("/api/v1/actions", headers=headers, json=body).get_json()
    assert (default["channels"], default["urgency"]) == (["voice", "sms", "email", "push"], "information")
    for wrong, says in (
        ({"channels": "sms"}, "channels must be a list"),
        ({"urgency": "now"}, "unknown urgency"),
    ):
        refused = client.post("/api/v1/actions", headers=headers, json={**body, **wrong})
        assert refused.status_code in (400, 422) and says in refused.get_json()["message"]
