"""The import-linter contracts in .importlinter hold for the code, and they do catch a breach.

The second test copies the tree, slips in an upward import (eager, then lazy inside a function)
and expects ``lint-imports`` to fail naming the broken contract: a contract that cannot fail
would prove nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "routing",
    "burgernet",
    "ivr",
    "broadcasting",
    "callback_api",
    "asterisk_conf",
    "kamailio_conf",
    "recordings",
    "composition",
    "testbed",
    "tests",
    "benchmarks",
    "scripts",
)
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    # The tree's own folder first on the path, so the copy is analysed and not the installed code.
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(tree / ".importlinter")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def copy_tree(target: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, target / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    shutil.copy(ROOT / ".importlinter", target / ".importlinter")
    return target


def test_the_code_keeps_every_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("burgernet/geo.py", "from composition import demo as _upward\n", "The core imports no adapter"),
        (
            "burgernet/phone.py",
            "def _lazy() -> object:\n    from broadcasting import service\n\n    return service\n",
            "The core imports no adapter",
        ),
        ("routing/areas.py", "import burgernet.db as _impure\n", "routing/ is pure"),
        ("benchmarks/routing_decision.py", "import tests.conftest as _support\n", "do not import tests/"),
        (
            "callback_api/actions/services.py",
            "from broadcasting import store as _inside\n",
            "broadcasting is used from outside",
        ),
        ("ivr/tip.py", "from recordings import tts as _inside\n", "recordings is used from outside"),
        (
            "callback_api/people/views.py",
            "from burgernet.models import Participant as _orm\n",
            "Panel views",
        ),
        ("burgernet/models.py", "import routing.decide\nimport ivr.app as _up\n", "Layers run one way"),
    ],
)
def test_a_deliberate_upward_import_breaks_the_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    tree = copy_tree(tmp_path)
    with (tree / module).open("a", encoding="utf-8") as source:
        source.write("\n\n" + line)
    result = lint_imports(tree)
    assert result.returncode != 0, result.stdout
    broken = [row for row in result.stdout.splitlines() if " BROKEN" in row]
    assert any(contract in row for row in broken), result.stdout
