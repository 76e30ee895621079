"""The panel's unassigned tips: failure-path tips the sweep could not place, until someone assigns them."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient

from burgernet.tip_inbox import TipInbox
from composition.context import Context
from recordings.paths import tips_dir
from tests.panel.conftest import World, audit_count, csrf_token
from tests.recordings.test_tip_sweep import write_tip


def _unassigned_tip(context: Context) -> int:
    """A tip from a withheld number, left while FastAGI was down, filed by the sweep."""
    write_tip(tips_dir(context.settings) / "unassigned" / "1700000900.1_.wav")
    inbox = TipInbox(context.sessions, tips_dir(context.settings), alerted_window_seconds=3600)
    report = inbox.sweep()
    assert len(report.filed) == 1 and report.linked == {}
    return report.filed[0]


def test_an_operator_hears_an_unassigned_tip_and_assigns_it_to_an_action(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    tip_id = _unassigned_tip(bn_context)
    client = client_for("operator")

    page = client.get("/tips").get_data(as_text=True)
    assert f'id="tip-{tip_id}"' in page and f"/tips/{tip_id}/audio" in page
    assert f'<option value="{world.active_id}"' in page
    assert f'<option value="{world.draft_id}"' not in page  # a draft takes no tips
    played = client.get(f"/tips/{tip_id}/audio")
    assert (played.status_code, played.data[:4]) == (200, b"RIFF")

    token = csrf_token(client, "/tips")
    assigned = client.post(f"/tips/{tip_id}/assign", data={"action_id": world.active_id, "csrf_token": token})

    assert assigned.status_code == 302
    assert f'id="tip-{tip_id}"' not in client.get("/tips").get_data(as_text=True)
    action_page = client.get(f"/actions/{world.active_id}").get_data(as_text=True)
    assert f"/tips/{tip_id}/audio" in action_page
    assert audit_count(bn_context, verb="assign", entity="tip", entity_id=str(tip_id)) == 1
    assert audit_count(bn_context, verb="tip-assigned", entity="action", entity_id=str(world.active_id)) == 1
    # Assigned once: a second try changes nothing.
    again = client.post(f"/tips/{tip_id}/assign", data={"action_id": world.active_id, "csrf_token": token})
    assert again.status_code == 302
    assert audit_count(bn_context, verb="assign", entity="tip", entity_id=str(tip_id)) == 1


def test_only_national_roles_see_or_assign_tips_outside_any_action(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    tip_id = _unassigned_tip(bn_context)
    centralist = client_for("centralist")

    assert f'id="tip-{tip_id}"' not in centralist.get("/tips").get_data(as_text=True)
    assert centralist.get(f"/tips/{tip_id}/audio").status_code == 403
    token = csrf_token(centralist, f"/actions/{world.active_id}")
    refused = centralist.post(
        f"/tips/{tip_id}/assign", data={"action_id": world.active_id, "csrf_token": token}
    )
    assert refused.status_code == 403
    assert audit_count(bn_context, verb="assign", entity="tip") == 0
    assert client_for("viewer").get("/tips").status_code == 403
    assert client_for(None).get("/tips").status_code == 302
