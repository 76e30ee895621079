"""Typed errors: every refusal has a stable code of its own, the HTML pages name the request,
and an unknown thing is the 404 page whichever service noticed."""

from __future__ import annotations

import importlib
import pkgutil
import re
import uuid
from collections.abc import Callable, Iterator

from flask import Flask
from flask.testing import FlaskClient

import burgernet
import callback_api
from burgernet.errors import DomainError
from callback_api.errors import PanelError
from tests.panel.conftest import World

CODE = re.compile(r"[a-z]+(\.[a-z_]+)+")


def _subclasses(base: type) -> Iterator[type]:
    sub: type
    for sub in base.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _all_error_classes() -> set[type]:
    # Import every module so that every error class is defined (the adapters' and the core's).
    for package in (burgernet, callback_api):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not module.name.endswith(("__main__", ".migrations.env")) and ".versions." not in module.name:
                importlib.import_module(module.name)
    return set(_subclasses(PanelError)) | set(_subclasses(DomainError)) | {PanelError, DomainError}


def test_each_error_class_that_names_a_code_has_its_own() -> None:
    owners: dict[str, list[str]] = {}
    for cls in _all_error_classes():
        if "code" in vars(cls):
            owners.setdefault(vars(cls)["code"], []).append(f"{cls.__module__}.{cls.__qualname__}")
    assert {code for code in owners if not CODE.fullmatch(code)} == set()
    assert {code: names for code, names in owners.items() if len(names) > 1} == {}
    # The codes API clients are told about (the OpenAPI document and the tests name them).
    assert {
        "action.not_found",
        "action.invalid",
        "action.invalid_state",
        "action.invalid_transition",
        "area.invalid",
        "auth.forbidden",
        "auth.unauthenticated",
        "broadcast.not_found",
        "input.invalid",
        "recording.invalid",
        "request.invalid",
    } <= set(owners)


def test_an_unexpected_failure_shows_the_request_id_as_the_reference(app: Flask) -> None:
    def boom() -> str:
        raise RuntimeError("kaput")

    app.add_url_rule("/boom", view_func=boom)
    response = app.test_client().get("/boom")
    assert response.status_code == 500 and response.mimetype == "text/html"
    reference = response.headers["X-Request-Id"]
    uuid.UUID(reference)
    html = response.get_data(as_text=True)
    assert f"<code>{reference}</code>" in html and "kaput" not in html


def test_unknown_things_are_the_404_page(
    world: World, client_for: Callable[[str | None], FlaskClient]
) -> None:
    admin = client_for("admin")
    for path in (
        "/actions/999999",  # ActionNotFound, from the core
        "/actions/999999/area.json",
        "/people/999999",  # ParticipantNotFound, from the panel
        "/settings/regions/999999",
        "/settings/centralists/999999",
        "/settings/users/999999",
        "/settings/templates/ufo/alert/sms/nl",  # UnknownTemplateKey
    ):
        response = admin.get(path)
        assert response.status_code == 404, path
        assert "Pagina niet gevonden." in response.get_data(as_text=True), path  # the default language
        uuid.UUID(response.headers["X-Request-Id"])
