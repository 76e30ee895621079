"""Typed settings: defaults in code, a TOML file on top, ``BURGERNET_*`` variables on top of that.

Precedence (highest first): keyword arguments, environment (``BURGERNET_DATABASE__URL``),
the TOML file named by ``BURGERNET_CONFIG`` (or ``burgernet.toml`` in the working
directory when present), then the defaults below. Everything is validated at
start-up; :func:`load_settings` turns pydantic's report into one readable message
that names each bad key the way the operator wrote it (``database.url`` or
``BURGERNET_DATABASE__URL``).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ENV_PREFIX = "BURGERNET_"
CONFIG_FILE_ENV = "BURGERNET_CONFIG"
DEFAULT_CONFIG_FILE = "burgernet.toml"


class SettingsError(ValueError):
    """The configuration cannot be used; the message names every bad key."""


class _Section(BaseModel):
    # A misspelt key in the file or the environment is an error, not silently ignored.
    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(_Section):
    # Empty means "SQLite file inside data_dir" (resolved in Settings below).
    url: str = ""
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value


class RedisSettings(_Section):
    url: str = "redis://127.0.0.1:6379/0"
    # Where `burgernet run` / the test fixtures start their own redis-server.
    managed_port: int = Field(default=6379, ge=1, le=65535)
    key_prefix: str = "bn:"
    active_actions_ttl_seconds: int = Field(default=300, ge=1)
    alerted_caller_ttl_seconds: int = Field(default=6 * 3600, ge=60)

    @field_validator("url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value


class AsteriskSettings(_Section):
    # The debootstrap chroot with Asterisk from Debian sid; cached between runs.
    sandbox_root: Path = Path("/var/cache/burgernet/asterisk-sid")
    # Prefer an Asterisk installed on the host when one is found.
    prefer_system_asterisk: bool = True
    sip_bind: str = "127.0.0.1"
    sip_port: int = Field(default=5060, ge=1, le=65535)
    rtp_start: int = Field(default=10000, ge=1024, le=65000)
    rtp_end: int = Field(default=10999, ge=1024, le=65535)
    # AMI and FastAGI stay on loopback (PRODUCT.md: originate is as strong as system).
    ami_host: str = "127.0.0.1"
    ami_port: int = Field(default=5038, ge=1, le=65535)
    ami_username: str = "burgernet"
    ami_secret: str = Field(default="change-me-ami-secret", min_length=12)
    agi_host: str = "127.0.0.1"
    agi_port: int = Field(default=4573, ge=1, le=65535)
    # The free number as dialled (0800-0011).
    free_number: str = "08000011"
    # Fixed, recognisable caller ID on alert calls (anonymous alert calls go unanswered).
    alert_caller_id: str = "08000011"
    alert_caller_name: str = "Burgernet"
    # The SIP trunk that delivers the free number and carries alert calls.
    trunk_host: str = "127.0.0.1"
    trunk_port: int = Field(default=5070, ge=1, le=65535)
    trunk_username: str = ""
    trunk_password: str = ""
    trunk_channels: int = Field(default=30, ge=1)
    # Centralists' SIP password when the database does not set one per endpoint.
    centralist_default_password: str = Field(default="change-me-centralist", min_length=8)
    # Ring times used by the routing decision.
    owner_ring_seconds: int = Field(default=15, ge=3, le=120)
    pool_ring_seconds: int = Field(default=20, ge=3, le=120)
    # Region whose pool the dialplan rings when FastAGI itself is unreachable.
    fallback_region: str = "MN"
    # Where Asterisk's own files live for the managed instance (inside the sandbox).
    instance_name: str = "burgernet"

    @model_validator(mode="after")
    def _rtp_range(self) -> AsteriskSettings:
        if self.rtp_end <= self.rtp_start:
            raise ValueError("rtp_end must be above rtp_start")
        return self


class RoutingSettings(_Section):
    max_menu_items: int = Field(default=5, ge=2, le=9)
    postcode_attempts: int = Field(default=3, ge=1, le=9)
    # An alert counts as "recent" for routing for this long.
    alerted_window_seconds: int = Field(default=6 * 3600, ge=60)


class AudioSettings(_Section):
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    max_seconds: float = Field(default=120.0, gt=0)
    tts_voice_nl: str = "nl"
    tts_voice_en: str = "en-gb"
    recording_retention_days: int = Field(default=90, ge=1)


class BroadcastSettings(_Section):
    sms_per_second: float = Field(default=10.0, gt=0)
    voice_calls_per_second: float = Field(default=1.0, gt=0)
    email_per_second: float = Field(default=20.0, gt=0)
    max_attempts: int = Field(default=3, ge=1, le=10)
    retry_base_seconds: float = Field(default=30.0, gt=0)
    # Which provider carries each channel. Voice: our own Asterisk trunk (AMI Originate) or
    # Twilio Programmable Voice (TwiML); SMS: Twilio; e-mail: SMTP.
    voice_provider: Literal["asterisk", "twilio"] = "asterisk"
    # How long an alert call rings before it counts as "no answer".
    voice_ring_seconds: int = Field(default=30, ge=5, le=120)
    # A delivery taken by a worker that stays unacknowledged this long is taken over by
    # another worker (the first one is presumed dead); longer than the longest call.
    claim_idle_seconds: float = Field(default=180.0, gt=0)
    # Deliveries each worker works on at the same time, per channel.
    worker_concurrency: int = Field(default=20, ge=1, le=500)
    # Trunk channels alert calls may never take: the free number must always get through.
    inbound_reserved_channels: int = Field(default=10, ge=0)


class SmtpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=1, le=65535)
    username: str = ""
    password: str = ""
    starttls: bool = False
    use_ssl: bool = False
    sender: str = "Burgernet <noreply@burgernet.local>"
    timeout_seconds: float = Field(default=20.0, gt=0)


class TwilioSettings(_Section):
    account_sid: str = "AC00000000000000000000000000000000"
    auth_token: str = Field(default="change-me-twilio-auth-token", min_length=8)
    from_number: str = "+3197010000011"
    # Only changed to point the official client at a Twilio-speaking test server.
    api_base_url: str = "https://api.twilio.com"
    # Where Twilio posts status callbacks and inbound messages (our callback_api); empty = the
    # panel's public_base_url.
    callback_base_url: str = ""
    # Key 1 on a Twilio alert call: Twilio dials the free number on our Asterisk over SIP, at
    # an address Twilio can reach; empty = sip:<free_number>@<asterisk.sip_bind>:<sip_port>.
    transfer_sip_uri: str = ""


class WebSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    secret_key: str = Field(default="dev-only-change-me-please", min_length=16)
    public_base_url: str = "http://127.0.0.1:8080"


class DemoSettings(_Section):
    participants: int = Field(default=100_000, ge=0)
    seed: int = 20261128


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    data_dir: Path = Path("var")
    log_level: str = "INFO"
    default_region: str = "MN"
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    asterisk: AsteriskSettings = AsteriskSettings()
    routing: RoutingSettings = RoutingSettings()
    audio: AudioSettings = AudioSettings()
    broadcast: BroadcastSettings = BroadcastSettings()
    smtp: SmtpSettings = SmtpSettings()
    twilio: TwilioSettings = TwilioSettings()
    web: WebSettings = WebSettings()
    demo: DemoSettings = DemoSettings()

    @model_validator(mode="after")
    def _voice_leaves_room_for_inbound(self) -> Settings:
        if self.broadcast.inbound_reserved_channels >= self.asterisk.trunk_channels:
            raise ValueError(
                "broadcast.inbound_reserved_channels must be below asterisk.trunk_channels "
                "(alert calls need at least one trunk channel)"
            )
        return self

    def voice_channels(self) -> int:
        """Trunk channels alert calls may use together, across all workers."""
        return self.asterisk.trunk_channels - self.broadcast.inbound_reserved_channels

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return upper

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{(self.data_dir / 'burgernet.db').resolve()}"

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "recordings"

    @property
    def sounds_dir(self) -> Path:
        return self.data_dir / "sounds"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _config_file()
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)


def _config_file() -> Path | None:
    named = os.environ.get(CONFIG_FILE_ENV)
    if named:
        path = Path(named)
        if not path.is_file():
            raise SettingsError(f"{CONFIG_FILE_ENV}={named}: no such file")
        return path
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def _describe(error: Any) -> str:
    dotted = ".".join(str(part) for part in error["loc"])
    env_name = ENV_PREFIX + "__".join(str(part) for part in error["loc"]).upper()
    return f"  {dotted} (env {env_name}): {error['msg']}"


def load_settings(**overrides: Any) -> Settings:
    """Build and validate settings, raising :class:`SettingsError` with every bad key named."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = [_describe(error) for error in exc.errors()]
        raise SettingsError("invalid Burgernet configuration:\n" + "\n".join(lines)) from None
    except (ValueError, OSError) as exc:  # e.g. a TOML syntax error in the config file
        if isinstance(exc, SettingsError):
            raise
        raise SettingsError(f"invalid Burgernet configuration: {exc}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, loaded once (tests call ``get_settings.cache_clear()``)."""
    return load_settings()


def as_environment(settings: Settings) -> dict[str, str]:
    """``BURGERNET_*`` variables that give a child process (a worker, the panel) these settings:
    every value that differs from the default in code, e.g. ``BURGERNET_REDIS__URL``."""
    environment: dict[str, str] = {}

    def add(prefix: str, values: dict[str, Any]) -> None:
        for name, value in values.items():
            key = f"{prefix}{name.upper()}"
            if isinstance(value, dict):
                add(f"{key}__", value)
            elif isinstance(value, bool):
                environment[key] = "true" if value else "false"
            else:
                environment[key] = str(value)

    add(ENV_PREFIX, settings.model_dump(exclude_defaults=True))
    return environment
