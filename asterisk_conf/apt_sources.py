"""The Debian archive this machine's apt is configured with, read from apt's own sources files.

The Asterisk sandbox is bootstrapped from the mirror the host already uses (and is allowed to
reach); the project never names a mirror itself. apt reads ``/etc/apt/sources.list`` (one-line
format), then the ``*.list`` (one-line) and ``*.sources`` (deb822) files in
``/etc/apt/sources.list.d`` in name order, and so do we. The Debian archive is the first binary
(``deb``) source with component ``main`` and a plain release suite: this host's codename, or
stable/testing/unstable/sid. That leaves out ``-security``, ``-updates`` and ``-backports`` (other
archives or partial ones) and third-party repositories, whose suites are their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ETC_APT = Path("/etc/apt")
OS_RELEASE = Path("/etc/os-release")
RELEASE_SUITES = frozenset({"oldstable", "stable", "testing", "unstable", "sid"})
FETCHABLE_SCHEMES = frozenset({"http", "https", "ftp", "file"})  # what debootstrap can fetch from


class NoDebianArchive(RuntimeError):
    """apt lists no Debian archive; the message names the files read and how to add one."""


@dataclass(frozen=True)
class AptSource:
    """One source entry (a one-line entry, or a deb822 paragraph that may list several of each)."""

    types: tuple[str, ...]
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]
    file: Path


def one_line_sources(text: str, file: Path) -> list[AptSource]:
    """Entries of a ``sources.list``-style file: ``deb [options] uri suite [component...]``."""
    sources: list[AptSource] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()  # apt drops everything from '#' on
        kind, _, rest = line.partition(" ")
        rest = rest.strip()
        if rest.startswith("["):  # [ arch=amd64 signed-by=... ]
            rest = rest.partition("]")[2]
        fields = rest.split()
        if kind in ("deb", "deb-src") and len(fields) >= 2:
            uri, suite, *components = fields
            sources.append(AptSource((kind,), (uri,), (suite,), tuple(components), file))
    return sources


def deb822_sources(text: str, file: Path) -> list[AptSource]:
    """Entries of a ``*.sources`` file: one per paragraph, unless it says ``Enabled: no``."""
    return [
        AptSource(
            tuple(fields.get("types", "").split()),
            tuple(fields.get("uris", "").split()),
            tuple(fields.get("suites", "").split()),
            tuple(fields.get("components", "").split()),
            file,
        )
        for fields in _paragraphs(text)
        if fields.get("enabled", "yes").strip().lower() != "no"
    ]


def _paragraphs(text: str) -> Iterator[dict[str, str]]:
    """deb822 paragraphs as {lower-case field name: value}; continuation lines are joined."""
    fields: dict[str, str] = {}
    name = ""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if fields:
                yield fields
            fields, name = {}, ""
        elif line[0] in " \t":
            if name:
                fields[name] += " " + line.strip()
        else:
            key, colon, value = line.partition(":")
            if colon:
                name = key.strip().lower()
                fields[name] = value.strip()
    if fields:
        yield fields


def source_files(etc_apt: Path = ETC_APT) -> list[Path]:
    """The files apt reads sources from, in apt's order (only those that exist)."""
    parts_dir = etc_apt / "sources.list.d"
    parts = sorted(parts_dir.iterdir(), key=lambda path: path.name) if parts_dir.is_dir() else []
    candidates = [etc_apt / "sources.list", *(path for path in parts if path.suffix in (".list", ".sources"))]
    return [path for path in candidates if path.is_file()]


def configured_sources(etc_apt: Path = ETC_APT) -> list[AptSource]:
    sources: list[AptSource] = []
    for path in source_files(etc_apt):
        parse = deb822_sources if path.suffix == ".sources" else one_line_sources
        sources.extend(parse(path.read_text(errors="replace"), path))
    return sources


def release_suites(codename: str | None) -> frozenset[str]:
    return RELEASE_SUITES | ({codename} if codename else set())


def debian_archive(sources: Iterable[AptSource], codename: str | None) -> str | None:
    """The URI of the first source that carries Debian itself (see the module), or None."""
    releases = release_suites(codename)
    for source in sources:
        if "deb" in source.types and "main" in source.components and releases & set(source.suites):
            for uri in source.uris:
                if urlsplit(uri).scheme in FETCHABLE_SCHEMES:
                    return uri.rstrip("/")
    return None


def host_codename(os_release: Path = OS_RELEASE) -> str | None:
    """This host's release codename (``VERSION_CODENAME`` in os-release), if it says."""
    if not os_release.is_file():
        return None
    for line in os_release.read_text(errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "VERSION_CODENAME":
            return value.strip().strip("\"'") or None
    return None


def debian_mirror(etc_apt: Path = ETC_APT, codename: str | None = None) -> str:
    """The Debian archive apt uses here; :class:`NoDebianArchive` with a how-to when there is none."""
    codename = codename or host_codename()
    found = debian_archive(configured_sources(etc_apt), codename)
    if found is not None:
        return found
    read = ", ".join(str(path) for path in source_files(etc_apt)) or "none of them exists"
    suites = ", ".join(sorted(release_suites(codename)))
    raise NoDebianArchive(
        "apt lists no Debian archive to build the Asterisk sandbox from. "
        f"Looked in {etc_apt}/sources.list, {etc_apt}/sources.list.d/*.list and "
        f"{etc_apt}/sources.list.d/*.sources (read: {read}) for a 'deb' source with component 'main' "
        f"and one of the suites {suites}. Add the Debian mirror this machine may use, e.g. as "
        f"{etc_apt}/sources.list.d/debian.sources with 'Types: deb', 'URIs: <mirror>/debian', "
        f"'Suites: {codename or 'stable'}', 'Components: main'; check it with apt-get update and run "
        "`burgernet asterisk sandbox` again (or install Asterisk 22 on the host)."
    )
