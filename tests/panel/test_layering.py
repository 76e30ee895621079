"""The panel's views only parse input, call a service and render: no database work in a view.

Every ``callback_api/**/views.py`` is read as source (AST, not imported) and may not import
SQLAlchemy or the ORM models, call ``select(...)``, or name a database session
(``session``, ``sessions``, ``session_scope``). That work belongs in the feature's services.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PANEL = Path(__file__).resolve().parents[2] / "callback_api"
VIEWS = sorted(PANEL.rglob("views.py"))
SESSION_NAMES = frozenset({"session", "sessions", "session_scope"})
FORBIDDEN_MODULES = ("sqlalchemy", "burgernet.models", "burgernet.db")


def _forbidden_module(name: str) -> bool:
    return any(name == module or name.startswith(module + ".") for module in FORBIDDEN_MODULES)


def offences(source: str) -> list[str]:
    """What in ``source`` does database work, as ``line: what`` strings."""
    found = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            found += [f"{line}: import {a.name}" for a in node.names if _forbidden_module(a.name)]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if _forbidden_module(module):
                found.append(f"{line}: from {module} import ...")
            elif module == "burgernet" and any(a.name in {"models", "db"} for a in node.names):
                found.append(f"{line}: from burgernet import models/db")
            found += [f"{line}: imports {a.name}" for a in node.names if {a.name, a.asname} & SESSION_NAMES]
        elif isinstance(node, ast.Call):
            func = node.func
            called = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            if called == "select":
                found.append(f"{line}: select(...)")
        if isinstance(node, ast.Name) and node.id in SESSION_NAMES:
            found.append(f"{line}: {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in SESSION_NAMES:
            found.append(f"{line}: .{node.attr}")
        elif isinstance(node, ast.arg) and node.arg in SESSION_NAMES:
            found.append(f"{line}: argument {node.arg}")
    return sorted(set(found), key=lambda text: (int(text.split(":")[0]), text))


def test_every_feature_has_views() -> None:
    folders = {path.parent.relative_to(PANEL).as_posix() for path in VIEWS}
    assert {"actions", "api", "auth", "dashboard", "feeds", "people", "settings"} <= folders


@pytest.mark.parametrize("path", VIEWS, ids=lambda path: path.relative_to(PANEL).as_posix())
def test_views_do_no_database_work(path: Path) -> None:
    assert offences(path.read_text(encoding="utf-8")) == [], f"{path}: move this into the feature's services"


def test_the_check_sees_database_work() -> None:
    source = """
from sqlalchemy import select
from burgernet.db import session_scope
from burgernet.models import Action
import sqlalchemy.orm
from flask import session


def view(context):
    with session_scope(context.sessions) as db:
        return db.scalar(select(Action.id))
"""
    assert offences(source) == [
        "2: from sqlalchemy import ...",
        "3: from burgernet.db import ...",
        "3: imports session_scope",
        "4: from burgernet.models import ...",
        "5: import sqlalchemy.orm",
        "6: imports session",
        "10: .sessions",
        "10: session_scope",
        "11: select(...)",
    ]
