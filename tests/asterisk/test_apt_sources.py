"""The Debian archive for the sandbox comes from apt's own sources files, in both formats."""

from __future__ import annotations

from pathlib import Path

import pytest

from asterisk_conf import sandbox
from asterisk_conf.apt_sources import NoDebianArchive, debian_mirror, host_codename, source_files
from asterisk_conf.sandbox import SandboxError, provision

# Hosts under the reserved .test domain: nothing here names a real mirror.
VENDOR_DEB822 = """\
# third-party first in name order, it must not be taken for Debian
Types: deb
URIs: https://vendor.test/node_20.x
Suites: nodistro
Components: main
"""

DEBIAN_DEB822 = """\
Types: deb
# a comment inside the paragraph
URIs: http://mirror.test/debian/
Suites: bookworm
 bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.test/debian-security
Suites: bookworm-security
Components: main
"""


def etc_apt(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "etc-apt"
    (root / "sources.list.d").mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def test_a_one_line_sources_list(tmp_path: Path) -> None:
    root = etc_apt(
        tmp_path,
        {
            "sources.list": (
                "# deb http://commented.test/debian bookworm main\n"
                "deb-src http://source-only.test/debian bookworm main\n"
                "deb http://security.test/debian-security bookworm-security main\n"
                "deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
                "http://mirror.test/debian bookworm main non-free-firmware  # the archive\n"
            )
        },
    )
    assert debian_mirror(root, codename="bookworm") == "http://mirror.test/debian"


def test_deb822_sources_in_name_order(tmp_path: Path) -> None:
    root = etc_apt(
        tmp_path,
        {"sources.list.d/a-vendor.sources": VENDOR_DEB822, "sources.list.d/debian.sources": DEBIAN_DEB822},
    )
    assert debian_mirror(root, codename="bookworm") == "http://mirror.test/debian"


def test_one_line_files_in_sources_list_d_count_and_other_names_do_not(tmp_path: Path) -> None:
    root = etc_apt(
        tmp_path,
        {
            "sources.list.d/debian.list.disabled": "deb http://disabled.test/debian bookworm main\n",
            "sources.list.d/b-debian.list": "deb http://list.test/debian sid main\n",
            "sources.list.d/c-debian.sources": DEBIAN_DEB822,
        },
    )
    assert [path.name for path in source_files(root)] == ["b-debian.list", "c-debian.sources"]
    assert debian_mirror(root, codename="bookworm") == "http://list.test/debian"


def test_a_disabled_paragraph_is_skipped(tmp_path: Path) -> None:
    disabled = DEBIAN_DEB822.replace("Types: deb\n# a comment", "Enabled: no\nTypes: deb\n# a comment")
    root = etc_apt(tmp_path, {"sources.list.d/debian.sources": disabled})
    with pytest.raises(NoDebianArchive):
        debian_mirror(root, codename="bookworm")


def test_no_debian_archive_configured_is_a_clear_error(tmp_path: Path) -> None:
    root = etc_apt(tmp_path, {"sources.list.d/vendor.sources": VENDOR_DEB822})
    with pytest.raises(NoDebianArchive) as raised:
        debian_mirror(root, codename="bookworm")
    message = str(raised.value)
    assert f"{root}/sources.list, {root}/sources.list.d/*.list and {root}/sources.list.d/*.sources" in message
    assert f"read: {root}/sources.list.d/vendor.sources" in message
    assert "'URIs: <mirror>/debian'" in message and "'Suites: bookworm'" in message


def test_no_sources_files_at_all(tmp_path: Path) -> None:
    with pytest.raises(NoDebianArchive, match="read: none of them exists"):
        debian_mirror(etc_apt(tmp_path, {}), codename="bookworm")


def test_the_host_codename_comes_from_os_release(tmp_path: Path) -> None:
    os_release = tmp_path / "os-release"
    os_release.write_text('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\n')
    assert host_codename(os_release) == "bookworm"
    assert host_codename(tmp_path / "missing") is None


def test_provisioning_without_a_debian_archive_fails_before_building(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = etc_apt(tmp_path, {})
    monkeypatch.setattr(sandbox, "debian_mirror", lambda: debian_mirror(empty, codename="bookworm"))
    root = tmp_path / "cache" / "asterisk-sid"
    with pytest.raises(SandboxError, match="apt lists no Debian archive"):
        provision(root, prefer_system=False, log=lambda _line: None)
    assert not (tmp_path / "cache").exists()
