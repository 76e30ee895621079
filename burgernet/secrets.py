"""Secrets: made here, kept in one private file, checked before a process starts.

* **Made**: :func:`generate` draws 32 random bytes from the operating system
  (:func:`secrets.token_urlsafe`, 43 characters). No secret ships with the code: the settings
  default to empty.
* **Kept**: ``<data_dir>/secrets.toml`` (:data:`burgernet.settings.SECRETS_FILE_NAME`), created
  with mode 0600 from the start (``os.open`` with ``O_EXCL`` and the mode, then an atomic
  rename: the file is never readable by others, not even for a moment). Every process given
  the same ``data_dir`` reads it through :func:`burgernet.settings.load_settings`; the config
  file and ``BURGERNET_*`` variables still override it.
* **Made on first use**: ``burgernet run`` and ``burgernet secrets init`` add whatever secret
  the file lacks; ``burgernet secrets rotate NAME`` replaces one (see :data:`SECRETS` for what
  must be restarted afterwards).
* **Checked**: :func:`require_strong_secrets` refuses an empty, known-default, short or reused
  secret, naming the setting and how to fix it. The ``burgernet`` command calls it when a
  process starts (``run``, ``serve``, ``worker``, ``web serve``, ``asterisk render/start/reload``);
  building a :class:`~burgernet.settings.Settings` does not, so library code and tests need none.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from burgernet.settings import (
    ENV_PREFIX,
    Settings,
    SettingsError,
    config_file_path,
    redis_url_password,
    secrets_file_path,
)

# Bytes of randomness per generated secret (43 URL-safe characters).
SECRET_BYTES = 32
# Mode of the secrets file and of every other file that holds a secret.
PRIVATE_FILE_MODE = 0o600
# A process's umask: files group-readable at most, nothing for others (the data dir is 0750).
PROCESS_UMASK = 0o027


@dataclass(frozen=True)
class SecretSpec:
    name: str  # dotted, as in the config file: "web.secret_key"
    min_length: int
    # Made by Burgernet (in the secrets file) and required; the others are optional credentials
    # someone else issues (a SIP trunk's, an SMTP server's), checked only when set.
    generated: bool
    after_rotation: str  # what must be restarted when it changes

    @property
    def env_name(self) -> str:
        return ENV_PREFIX + self.name.upper().replace(".", "__")

    @property
    def section_and_key(self) -> tuple[str, str]:
        section, key = self.name.split(".")
        return section, key


SECRETS: tuple[SecretSpec, ...] = (
    SecretSpec(
        "web.secret_key",
        32,
        True,
        "restart the panel (burgernet web serve) and the workers. Everyone is logged out, and links "
        "already sent (inquiry mails, alert-call audio) stop working.",
    ),
    SecretSpec(
        "asterisk.ami_secret",
        24,
        True,
        "restart Asterisk with its configuration rendered again (burgernet asterisk render, or restart "
        "burgernet run), then burgernet serve and the workers.",
    ),
    SecretSpec(
        "twilio.auth_token",
        24,
        True,
        "restart the panel (it checks Twilio's webhook signatures with it) and the workers. When you use "
        "Twilio, set the account's own token in BURGERNET_TWILIO__AUTH_TOKEN or the config file instead.",
    ),
    SecretSpec(
        "asterisk.node_secret",
        24,
        True,
        "render and restart Asterisk on every node with the same secrets file: the nodes' device-state "
        "PUBLISH requests are challenged with it.",
    ),
    SecretSpec(
        "redis.password",
        24,
        True,
        "restart everything (burgernet run): the redis-server it starts requires the new password, and "
        "every process connects with it.",
    ),
    # Web Push (VAPID, RFC 8292): generate() is 32 random bytes in base64url, which is exactly a
    # raw P-256 private scalar (one draw in 2^32 falls outside the curve's order and is refused
    # by burgernet.push_subscriptions.vapid_key: rotate it then).
    SecretSpec(
        "push.vapid_private_key",
        43,
        True,
        "restart the workers and the panel. Every device must subscribe again (the app does when it "
        "opens): push services refuse pushes signed with a key other than the subscription's.",
    ),
    # Issued by the trunk provider / mail provider: no length of ours to insist on.
    SecretSpec("asterisk.trunk_password", 0, False, "render and reload Asterisk (burgernet asterisk reload)"),
    SecretSpec("smtp.password", 0, False, "restart the workers and the panel."),
)
SECRETS_BY_NAME = {spec.name: spec for spec in SECRETS}

# Values that shipped as defaults once, and the usual suspects. Compared case-insensitively.
KNOWN_DEFAULTS = frozenset(
    {
        "change-me-ami-secret",
        "change-me-centralist",
        "change-me-twilio-auth-token",
        "dev-only-change-me-please",
        "change-me",
        "changeme",
        "change_me",
        "secret",
        "password",
        "passw0rd",
        "admin",
        "burgernet",
        "asterisk",
        "letmein",
        "123456",
        "12345678",
        "default",
    }
)
_PASSWORD_PARAMETER = re.compile(r"([?&]password=)[^&#]*")
# Fewer distinct characters than this is a pattern, not a secret ("aaaa…", "abab…").
MIN_DISTINCT_CHARACTERS = 8


class WeakSecretError(SettingsError):
    """A process may not start with these secrets; the message says which and how to fix each."""


def generate() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


# --- the file --------------------------------------------------------------------------------
def ensure_data_dir(data_dir: Path) -> None:
    """Create the data directory owner-only-writable and closed to others (0750) when missing."""
    data_dir.mkdir(mode=0o750, parents=True, exist_ok=True)


def write_private_file(path: Path, text: str) -> None:
    """Replace ``path`` atomically with a file that is mode 0600 from the moment it exists."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def read_secrets_file(data_dir: Path) -> dict[str, str]:
    """The secrets in ``<data_dir>/secrets.toml`` by dotted name; empty when there is no file."""
    path = secrets_file_path(data_dir)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"secrets file {path}: {exc}") from None
    return {
        f"{section}.{key}": str(value)
        for section, values in data.items()
        if isinstance(values, dict)
        for key, value in values.items()
    }


def _write_secrets_file(data_dir: Path, values: dict[str, str]) -> None:
    sections: dict[str, dict[str, str]] = {}
    for name in sorted(values):
        section, key = name.split(".", 1)
        sections.setdefault(section, {})[key] = values[name]
    lines = [
        "# Burgernet's secrets: generated, private (mode 0600). Read by every Burgernet process",
        "# with this data directory; BURGERNET_* variables and the config file override them.",
        "# Replace one with `burgernet secrets rotate NAME`.",
    ]
    for section, keys in sections.items():
        lines.append(f"\n[{section}]")
        # JSON string quoting is valid TOML basic-string quoting.
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in keys.items())
    ensure_data_dir(data_dir)
    write_private_file(secrets_file_path(data_dir), "\n".join(lines) + "\n")


def create_missing_secrets(data_dir: Path) -> list[str]:
    """Generate every Burgernet-made secret the file lacks; returns the names generated."""
    values = read_secrets_file(data_dir)
    missing = [spec.name for spec in SECRETS if spec.generated and not values.get(spec.name)]
    if missing:
        values.update({name: generate() for name in missing})
        _write_secrets_file(data_dir, values)
    return missing


def rotate_secret(data_dir: Path, name: str) -> str:
    """Replace one generated secret in the file (atomically); returns what must be restarted."""
    spec = SECRETS_BY_NAME.get(name)
    if spec is None or not spec.generated:
        names = ", ".join(s.name for s in SECRETS if s.generated)
        raise SettingsError(f"{name!r} is not a secret Burgernet generates; one of: {names}")
    values = read_secrets_file(data_dir)
    values[name] = generate()
    for other in SECRETS:  # rotating one also fills in any that are missing
        if other.generated and not values.get(other.name):
            values[other.name] = generate()
    _write_secrets_file(data_dir, values)
    return spec.after_rotation


def overridden_by(spec: SecretSpec) -> str | None:
    """Where a value that beats the secrets file comes from: the environment or the config file."""
    if os.environ.get(spec.env_name):
        return f"the environment variable {spec.env_name}"
    config = config_file_path()
    if config is not None:
        section, key = spec.section_and_key
        try:
            data = tomllib.loads(config.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            return None
        if isinstance(data.get(section), dict) and data[section].get(key):
            return f"the config file {config} ([{section}] {key})"
    return None


# --- the check ---------------------------------------------------------------------------------
def secret_values(settings: Settings) -> dict[str, str]:
    """Every secret setting's value in effect, by dotted name (Redis: the password in its URL)."""
    values: dict[str, str] = {}
    for spec in SECRETS:
        section, key = spec.section_and_key
        values[spec.name] = str(getattr(getattr(settings, section), key))
    values["redis.password"] = redis_url_password(settings.redis.url)
    return values


def _how_to_fix(settings: Settings, spec: SecretSpec, problem: str) -> str:
    source = overridden_by(spec)
    if source is not None:
        instead = "remove it to use the secrets file" if spec.generated else "remove it"
        return f"it comes from {source}: set a strong value there, or {instead}"
    if spec.name == "redis.password" and settings.redis.password != redis_url_password(settings.redis.url):
        return "it comes from redis.url (BURGERNET_REDIS__URL): put the server's strong password there"
    if not spec.generated:
        return f"set a strong value in {spec.env_name} or the config file, or leave it empty"
    file = settings.secrets_file
    if problem == "empty":
        return f"run `burgernet secrets init` (creates {file}) or set {spec.env_name}"
    return f"run `burgernet secrets rotate {spec.name}` (rewrites {file}) or set {spec.env_name}"


def _weakness(spec: SecretSpec, value: str) -> str | None:
    if not value:
        return "empty" if spec.generated else None
    if value.strip().lower() in KNOWN_DEFAULTS or "change-me" in value.lower():
        return "a known default value"
    if len(value) < spec.min_length:
        return f"too short ({len(value)} characters; at least {spec.min_length})"
    if spec.min_length and len(set(value)) < MIN_DISTINCT_CHARACTERS:
        return f"a pattern, not a secret (fewer than {MIN_DISTINCT_CHARACTERS} different characters)"
    return None


def secret_problems(settings: Settings) -> list[str]:
    """One line per weak secret, naming the setting and how to fix it; empty when all are fine."""
    values = secret_values(settings)
    problems: list[str] = []
    for spec in SECRETS:
        weakness = _weakness(spec, values[spec.name])
        if weakness is not None:
            fix = _how_to_fix(settings, spec, "empty" if weakness == "empty" else "weak")
            problems.append(f"  {spec.name} (env {spec.env_name}) is {weakness}: {fix}")
    first_with_value: dict[str, str] = {}
    for spec in SECRETS:
        value = values[spec.name]
        if not value:
            continue
        if value in first_with_value:
            problems.append(
                f"  {spec.name} (env {spec.env_name}) has the same value as {first_with_value[value]}: "
                f"every secret must be different; {_how_to_fix(settings, spec, 'reused')}"
            )
        else:
            first_with_value[value] = spec.name
    file = settings.secrets_file
    try:
        mode = stat.S_IMODE(file.stat().st_mode)
    except FileNotFoundError:
        mode = 0
    if mode & 0o077:
        problems.append(f"  {file} is readable by others (mode {mode:04o}): chmod 600 {file}")
    return problems


def require_strong_secrets(settings: Settings) -> None:
    """Refuse to start a process with an empty, known-default, short or reused secret."""
    problems = secret_problems(settings)
    if problems:
        raise WeakSecretError("refusing to start with these secrets:\n" + "\n".join(problems))


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***``, for logs and messages."""
    parts = urlsplit(url)
    if parts.password:
        credentials, host = parts.netloc.rsplit("@", 1)
        url = url.replace(f"{credentials}@{host}", f"{parts.username or ''}:***@{host}", 1)
    return _PASSWORD_PARAMETER.sub(r"\1***", url)
