"""AMBER Alert feeds: CAP 1.2 valid against the OASIS schema, Atom, JSON Feed, display page."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from flask import Flask
from lxml import etree
from PIL import Image

from burgernet.actions import AreaSpec
from burgernet.domain import AreaKind
from callback_api.photos import check_photo, store_photo
from composition.context import Context
from testbed.approvals import start_approved
from tests.panel.conftest import UTRECHT, World

XSD = Path(__file__).resolve().parents[2] / "callback_api" / "static" / "cap" / "CAP-v1.2.xsd"
CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
ATOM = "{http://www.w3.org/2005/Atom}"
POLYGON = {
    "type": "MultiPolygon",
    "coordinates": [
        [[[5.10, 52.08], [5.14, 52.08], [5.14, 52.10], [5.10, 52.08]]],
        [[[5.20, 52.08], [5.24, 52.08], [5.24, 52.10], [5.20, 52.08]]],
    ],
}
AREAS = {
    "circle": AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=5000),
    "polygon": AreaSpec(AreaKind.POLYGON, geojson=json.dumps(POLYGON)),
    "postcodes": AreaSpec(AreaKind.POSTCODES, postcodes=("3511", "3512AB")),
    "national": AreaSpec(AreaKind.NATIONAL),
}


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD)))


def _amber(context: Context, area: AreaSpec, *, photo: bool = False) -> int:
    view = context.actions.create(
        action_type="amber_alert",
        title="AMBER Alert: Sanne (6)",
        region_code="MN",
        area=area,
        description="Roze jas, blond haar & bril <klein>",
        actor="test",
        source="test",
    )
    if photo:
        buffer = io.BytesIO()
        Image.new("RGB", (120, 160), (250, 200, 0)).save(buffer, format="JPEG")
        store_photo(
            context.settings,
            context.sessions,
            view.id,
            check_photo(buffer.getvalue()),
            actor="test",
            source="test",
        )
    start_approved(context, view.id, requester="test")
    return view.id


def _validate(schema: etree.XMLSchema, data: bytes) -> etree._Element:
    document = etree.fromstring(data)
    assert schema.validate(document), schema.error_log
    return document


@pytest.mark.parametrize("kind", sorted(AREAS))
def test_cap_is_valid_for_every_area_kind(
    kind: str, world: World, bn_context: Context, app: Flask, schema: etree.XMLSchema
) -> None:
    action_id = _amber(bn_context, AREAS[kind], photo=kind == "circle")
    response = app.test_client().get("/feeds/amber.cap.xml")
    assert response.status_code == 200 and response.mimetype == "application/cap+xml"
    alert = _validate(schema, response.data)
    assert alert.findtext(f"{CAP}identifier") == f"NL-Burgernet-AMBER-{action_id}"
    assert alert.findtext(f"{CAP}msgType") == "Alert"
    infos = alert.findall(f"{CAP}info")
    assert [i.findtext(f"{CAP}language") for i in infos] == ["nl-NL", "en-GB"]
    assert infos[0].findtext(f"{CAP}description") == "Roze jas, blond haar & bril <klein>"
    assert "0800-0011" in infos[0].findtext(f"{CAP}instruction")
    area = infos[0].find(f"{CAP}area")
    if kind == "circle":
        assert area.findtext(f"{CAP}circle") == "52.09070,5.12140 5.000"
        uri = infos[0].find(f"{CAP}resource").findtext(f"{CAP}uri")
        assert uri.endswith(f"/feeds/amber/{action_id}/photo")
        assert app.test_client().get(f"/feeds/amber/{action_id}/photo").status_code == 200
    if kind == "polygon":
        polygons = [p.text for p in area.findall(f"{CAP}polygon")]
        assert len(polygons) == 2 and polygons[0].split()[0] == polygons[0].split()[-1]
        assert polygons[0].startswith("52.08000,5.10000")  # lat,lon order
    if kind == "postcodes":
        assert [g.findtext(f"{CAP}value") for g in area.findall(f"{CAP}geocode")] == ["3511", "3512AB"]
    if kind == "national":
        assert area.findtext(f"{CAP}areaDesc") == "Nederland"


def test_closed_alert_becomes_a_valid_all_clear_without_photo(
    world: World, bn_context: Context, app: Flask, schema: etree.XMLSchema
) -> None:
    action_id = _amber(bn_context, AREAS["circle"], photo=True)
    bn_context.actions.close(
        action_id, outcome="gevonden", result_message="Sanne is veilig terug.", actor="test", source="test"
    )
    client = app.test_client()
    alert = _validate(schema, client.get(f"/feeds/amber/{action_id}.cap.xml").data)
    assert alert.findtext(f"{CAP}msgType") == "Update"
    assert alert.findtext(f"{CAP}references").split(",")[1] == f"NL-Burgernet-AMBER-{action_id}"
    info = alert.find(f"{CAP}info")
    assert info.findtext(f"{CAP}responseType") == "AllClear"
    assert info.findtext(f"{CAP}description") == "Sanne is veilig terug."
    assert info.find(f"{CAP}resource") is None
    assert client.get(f"/feeds/amber/{action_id}/photo").status_code == 404
    display = client.get(f"/amber/{action_id}").get_data(as_text=True)
    assert "Sanne is veilig terug." in display and "Roze jas" not in display
    # "gevonden" is the control room's internal outcome: the public reads the result message only.
    for path in ("/feeds/amber.cap.xml", "/feeds/amber.atom", "/feeds/amber.json", "/amber"):
        text = client.get(path).get_data(as_text=True)
        assert "Sanne is veilig terug." in text and "gevonden" not in text, path


def test_an_all_clear_without_a_public_message_says_only_that_it_ended(
    world: World, bn_context: Context, app: Flask, schema: etree.XMLSchema
) -> None:
    action_id = _amber(bn_context, AREAS["national"])
    bn_context.actions.close(action_id, outcome="intern: gevonden bij oom", result_message="", actor="test")
    client = app.test_client()
    info = _validate(schema, client.get(f"/feeds/amber/{action_id}.cap.xml").data).find(f"{CAP}info")
    assert info.findtext(f"{CAP}description") == "AMBER Alert beëindigd"
    item = client.get("/feeds/amber.json").get_json()["items"][0]
    assert item["content_text"] == "" and set(item["_burgernet"]) == {
        "status",
        "region",
        "area_kind",
        "call",
        "cap",
    }
    for path in ("/feeds/amber.atom", f"/amber/{action_id}"):
        assert "oom" not in client.get(path).get_data(as_text=True), path


def test_only_amber_alerts_are_published(world: World, app: Flask) -> None:
    client = app.test_client()
    assert client.get("/feeds/amber.cap.xml").status_code == 404
    assert client.get(f"/feeds/amber/{world.active_id}.cap.xml").status_code == 404
    assert client.get("/feeds/amber.json").get_json()["items"] == []


def test_atom_and_json_feeds(world: World, bn_context: Context, app: Flask) -> None:
    first = _amber(bn_context, AREAS["national"])
    second = _amber(bn_context, AREAS["circle"])
    client = app.test_client()
    atom = etree.fromstring(client.get("/feeds/amber.atom").data)
    assert atom.tag == f"{ATOM}feed"
    entries = atom.findall(f"{ATOM}entry")
    assert len(entries) == 2
    cap_links = [
        link.get("href")
        for e in entries
        for link in e.findall(f"{ATOM}link")
        if link.get("type") == "application/cap+xml"
    ]
    assert sorted(cap_links) == sorted(
        f"http://127.0.0.1:8080/feeds/amber/{i}.cap.xml" for i in (first, second)
    )
    feed = client.get("/feeds/amber.json")
    assert feed.mimetype == "application/feed+json" and feed.headers["Access-Control-Allow-Origin"] == "*"
    body = feed.get_json()
    assert body["version"] == "https://jsonfeed.org/version/1.1"
    assert {item["_burgernet"]["status"] for item in body["items"]} == {"active"}


def test_display_page_is_public_and_frameable(world: World, bn_context: Context, app: Flask) -> None:
    _amber(bn_context, AREAS["circle"])
    response = app.test_client().get("/amber")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "AMBER Alert: Sanne (6)" in page and "0800-0011" in page
    assert "X-Frame-Options" not in response.headers
    assert "frame-ancestors" not in response.headers["Content-Security-Policy"]


def test_the_schema_check_is_not_vacuous(
    world: World, bn_context: Context, app: Flask, schema: etree.XMLSchema
) -> None:
    _amber(bn_context, AREAS["circle"])
    data = app.test_client().get("/feeds/amber.cap.xml").data
    document = etree.fromstring(data)
    sent = document.find(f"{CAP}sent")
    assert sent is not None and sent.text is not None
    sent.text = sent.text[:19] + "Z"  # CAP 1.2 demands an explicit offset, never "Z"
    assert not schema.validate(document)
