from __future__ import annotations

import os
from pathlib import Path

import pytest

from burgernet.settings import SettingsError, as_environment, load_settings


def test_defaults_are_usable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.asterisk.free_number == "08000011"
    assert settings.asterisk.ami_host == "127.0.0.1"
    assert settings.database_url.startswith("sqlite:///") and settings.database_url.endswith("burgernet.db")


def test_file_then_environment_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text('log_level = "debug"\n[asterisk]\nfree_number = "08001234"\nsip_port = 5099\n')
    monkeypatch.setenv("BURGERNET_CONFIG", str(config))
    monkeypatch.setenv("BURGERNET_ASTERISK__SIP_PORT", "5123")
    settings = load_settings()
    assert settings.log_level == "DEBUG"
    assert settings.asterisk.free_number == "08001234"  # from the file
    assert settings.asterisk.sip_port == 5123  # the environment beats the file


def test_bad_values_name_the_key_in_both_spellings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BURGERNET_ASTERISK__SIP_PORT", "70000")
    monkeypatch.setenv("BURGERNET_REDIS__URL", "http://nope")
    with pytest.raises(SettingsError) as error:
        load_settings()
    message = str(error.value)
    assert "asterisk.sip_port (env BURGERNET_ASTERISK__SIP_PORT)" in message
    assert "redis.url (env BURGERNET_REDIS__URL)" in message


def test_unknown_key_in_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text("[asterisk]\nfree_numbr = '0800'\n")
    monkeypatch.setenv("BURGERNET_CONFIG", str(config))
    with pytest.raises(SettingsError, match=r"asterisk\.free_numbr"):
        load_settings()


def test_missing_config_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BURGERNET_CONFIG", str(tmp_path / "absent.toml"))
    with pytest.raises(SettingsError, match="no such file"):
        load_settings()


def test_cross_field_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError, match="rtp_end must be above rtp_start"):
        load_settings(asterisk={"rtp_start": 20000, "rtp_end": 10000})


def test_as_environment_gives_a_child_process_the_same_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    parent = load_settings(
        data_dir="/srv/burgernet",
        redis={"url": "redis://10.0.0.5:6379/2", "key_prefix": "x:"},
        broadcast={"sms_per_second": 40.5, "voice_provider": "twilio"},
        smtp={"starttls": True},
    )
    environment = as_environment(parent)
    assert environment["BURGERNET_REDIS__URL"] == "redis://10.0.0.5:6379/2"
    assert "BURGERNET_WEB__PORT" not in environment  # defaults stay out
    for name in [n for n in os.environ if n.startswith("BURGERNET_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert load_settings() == parent


def test_a_cluster_refuses_sqlite_and_a_redis_without_sentinels(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SettingsError, match="needs PostgreSQL: SQLite is one file"):
        load_settings(cluster={"enabled": True})
    # Peers make a cluster as well, even without the switch.
    peers = {"node_name": "n1", "peer_nodes": ["n2@10.0.0.2:5060"]}
    with pytest.raises(SettingsError, match="needs PostgreSQL"):
        load_settings(asterisk=peers)
    postgres = {"url": "postgresql://burgernet:pw@10.0.0.5/burgernet"}
    with pytest.raises(SettingsError, match="needs Redis through Sentinel"):
        load_settings(cluster={"enabled": True}, database=postgres)
    settings = load_settings(
        asterisk=peers, database=postgres, redis={"sentinels": ["10.0.0.11:26379", "10.0.0.12:26379"]}
    )
    assert settings.in_cluster and not load_settings().in_cluster


def test_peer_nodes_need_this_nodes_name_and_distinct_names(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError, match=r"needs asterisk\.node_name"):
        load_settings(asterisk={"peer_nodes": ["n2@10.0.0.2:5060"]})
    with pytest.raises(SettingsError, match="its own name"):
        load_settings(asterisk={"node_name": "n1", "peer_nodes": ["n1@10.0.0.2:5060"]})
    with pytest.raises(SettingsError, match="node_name"):
        load_settings(asterisk={"node_name": "Node 1"})


def test_a_plain_postgresql_url_uses_the_installed_driver() -> None:
    """SQLAlchemy 2.1 reads postgresql:// as psycopg 3; Burgernet ships psycopg2."""
    settings = load_settings(database={"url": "postgresql://u:p@db.example/burgernet"})
    assert settings.database_url == "postgresql+psycopg2://u:p@db.example/burgernet"
    explicit = load_settings(database={"url": "postgresql+psycopg2://u:p@db.example/burgernet"})
    assert explicit.database_url == "postgresql+psycopg2://u:p@db.example/burgernet"
