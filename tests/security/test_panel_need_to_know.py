"""Need-to-know (callback_api.access): a centralist reads callers' numbers and tips only of their own
region's actions or a team they are on; national roles read all; viewers none. Panel, API and the
live feed follow the same rule; every direct read is audited."""

from __future__ import annotations

import json
from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import update

from burgernet.actions import AreaSpec
from burgernet.calls import CallLog
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.models import User
from composition.context import Context
from tests.panel import conftest as panel_fixtures
from tests.panel.conftest import World, audit_count, wav_bytes

ClientFor = Callable[[str | None], FlaskClient]
CALLER = "+31687654321"

# The panel's fixtures (tests/panel/conftest.py), reused here. The world's centralist user is
# c-mn-1 (region MN, on the team of the active MN action); the draft action is region RO.
app = panel_fixtures.app
client_for = panel_fixtures.client_for
world = panel_fixtures.world


def _tip(context: Context, action_id: int, unique_id: str) -> int:
    recording = context.settings.recordings_dir / "tips" / str(action_id) / f"{unique_id}.wav"
    recording.parent.mkdir(parents=True, exist_ok=True)
    recording.write_bytes(wav_bytes())
    log = CallLog(context.sessions)
    log.open_call(unique_id, caller_number=CALLER, participant_id=None, action_id=action_id, region_code="RO")
    return log.register_tip(
        unique_id, action_id=action_id, recording_path=str(recording), callback_number=CALLER
    )


def _bearer(world: World, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[role]}"}


def app_client(client: FlaskClient) -> FlaskClient:
    """A client of the same app without the panel cookie (the API takes only the token)."""
    return client.application.test_client()


def test_a_centralist_gets_403_on_another_regions_tips_and_200_on_their_own(
    world: World, bn_context: Context, client_for: ClientFor
) -> None:
    other_region_tip = _tip(bn_context, world.draft_id, "1700000001.1")  # region RO, team c-ro-1
    centralist = client_for("centralist")

    refused = centralist.get(f"/tips/{other_region_tip}/audio")
    assert refused.status_code == 403
    api = app_client(centralist).get(
        f"/api/v1/actions/{world.draft_id}/callbacks", headers=_bearer(world, "centralist")
    )
    assert api.status_code == 403 and api.get_json()["error_id"] == "access.need_to_know"
    page = centralist.get(f"/actions/{world.draft_id}").get_data(as_text=True)
    assert CALLER not in page and CALLER[:-4] + "****" in page
    assert f"/tips/{other_region_tip}/audio" not in page

    assert centralist.get(f"/tips/{world.tip_id}/audio").status_code == 200
    own = centralist.get(f"/api/v1/actions/{world.active_id}/callbacks", headers=_bearer(world, "centralist"))
    assert own.status_code == 200 and own.get_json()["calls"][0]["caller_number"] == "+31612345678"
    own_page = centralist.get(f"/actions/{world.active_id}").get_data(as_text=True)
    assert "+31612345678" in own_page and f"/tips/{world.tip_id}/audio" in own_page
    # The reads that succeeded are audited; the refused ones read nothing.
    assert (
        audit_count(bn_context, verb="read", entity="tip", entity_id=str(world.tip_id), actor="centralist")
        == 1
    )
    assert audit_count(bn_context, verb="read", entity="action", entity_id=str(world.active_id)) == 1
    assert audit_count(bn_context, verb="read", entity="tip", entity_id=str(other_region_tip)) == 0


def test_a_centralist_on_another_regions_team_reads_that_action(
    world: World, bn_context: Context, client_for: ClientFor
) -> None:
    action = bn_context.actions.create(
        action_type="vehicle",
        title="Gestolen auto",
        region_code="RO",
        area=AreaSpec(AreaKind.POSTCODES, postcodes=("3011",)),
        team=["c-ro-1", "c-mn-1"],
        actor="test",
        source="test",
    )
    tip_id = _tip(bn_context, action.id, "1700000002.1")
    assert client_for("centralist").get(f"/tips/{tip_id}/audio").status_code == 200


def test_a_centralist_linked_to_no_centralist_reads_nothing(
    world: World, bn_context: Context, client_for: ClientFor
) -> None:
    with session_scope(bn_context.sessions) as session:
        session.execute(update(User).where(User.username == "centralist").values(centralist_id=None))
    centralist = client_for("centralist")
    assert centralist.get(f"/tips/{world.tip_id}/audio").status_code == 403
    page = centralist.get(f"/actions/{world.active_id}").get_data(as_text=True)
    assert "+31612345678" not in page


def test_national_roles_read_every_region(world: World, bn_context: Context, client_for: ClientFor) -> None:
    other_region_tip = _tip(bn_context, world.draft_id, "1700000003.1")
    for role in ("operator", "admin"):
        client = client_for(role)
        assert client.get(f"/tips/{other_region_tip}/audio").status_code == 200
        api = app_client(client).get(
            f"/api/v1/actions/{world.draft_id}/callbacks", headers=_bearer(world, role)
        )
        assert api.status_code == 200 and api.get_json()["tips"][0]["callback_number"] == CALLER
        assert audit_count(bn_context, verb="read", entity="tip", actor=role) == 1


def test_viewers_see_masked_numbers_and_no_personal_data(
    world: World, bn_context: Context, client_for: ClientFor
) -> None:
    viewer = client_for("viewer")
    page = viewer.get(f"/actions/{world.active_id}").get_data(as_text=True)
    assert "+31612345678" not in page and "+3161234****" in page
    assert f"/tips/{world.tip_id}/audio" not in page
    assert viewer.get(f"/tips/{world.tip_id}/audio").status_code == 403
    assert viewer.get("/people").status_code == 403
    api = app_client(viewer).get(
        f"/api/v1/actions/{world.active_id}/callbacks", headers=_bearer(world, "viewer")
    )
    assert api.status_code == 403
    assert audit_count(bn_context, verb="read") == 0


def _next_event(chunks: object) -> dict[str, object]:
    for chunk in chunks:  # type: ignore[attr-defined]
        text = chunk.decode() if isinstance(chunk, bytes) else chunk
        if text.startswith("event:"):
            data: dict[str, object] = json.loads(text.split("data: ", 1)[1])
            return data
    raise AssertionError("stream ended")


def test_the_live_feed_masks_other_regions_numbers_for_a_centralist(
    world: World, bn_context: Context, client_for: ClientFor
) -> None:
    response = client_for("centralist").get("/live/events", buffered=False)
    chunks = response.iter_encoded()
    assert b"subscribed" in next(chunks)
    bn_context.live.publish({"type": "call_routed", "caller": CALLER, "action_id": world.draft_id})
    other = _next_event(chunks)
    bn_context.live.publish({"type": "call_routed", "caller": CALLER, "action_id": world.active_id})
    own = _next_event(chunks)
    bn_context.live.publish({"type": "call_answered", "caller": CALLER})
    unknown = _next_event(chunks)
    response.close()
    assert (other["caller"], other["action_id"]) == ("****", world.draft_id)
    assert (own["caller"], own["action_id"]) == (CALLER, world.active_id)
    assert unknown["caller"] == "****"
