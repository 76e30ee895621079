"""No shipped default secret is ever used: processes refuse weak secrets; the first run makes strong ones.

Against the real ``burgernet`` command (click's runner, and one real subprocess), the real
secrets file on disk, and a real redis-server that requires its password.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner, Result

from burgernet.secrets import generate, read_secrets_file, redact_url
from burgernet.settings import load_settings
from composition.cli import main
from composition.redis_server import ManagedRedis
from testbed.ports import free_port

SECRET_ENV = {
    "web.secret_key": "BURGERNET_WEB__SECRET_KEY",
    "asterisk.ami_secret": "BURGERNET_ASTERISK__AMI_SECRET",
    "twilio.auth_token": "BURGERNET_TWILIO__AUTH_TOKEN",
    "redis.password": "BURGERNET_REDIS__PASSWORD",
    "push.vapid_private_key": "BURGERNET_PUSH__VAPID_PRIVATE_KEY",
    "asterisk.node_secret": "BURGERNET_ASTERISK__NODE_SECRET",
}
PROCESS_COMMANDS = [["serve"], ["worker"], ["web", "serve"], ["asterisk", "render", "--out", "rendered"]]


@pytest.fixture(autouse=True)
def _keep_umask() -> Iterator[None]:
    # `burgernet run` sets its process's umask for good; keep the test process's own.
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory of its own, and an environment with no secrets in it."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("BURGERNET_")]:
        monkeypatch.delenv(name)
    data = tmp_path / "data"
    monkeypatch.setenv("BURGERNET_DATA_DIR", str(data))
    monkeypatch.setenv("BURGERNET_DATABASE__URL", f"sqlite:///{tmp_path / 'burgernet.db'}")
    return data


def strong_environment(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {name: generate() for name in SECRET_ENV}
    for name, value in values.items():
        monkeypatch.setenv(SECRET_ENV[name], value)
    return values


def invoke(args: list[str]) -> Result:
    return CliRunner().invoke(main, args)


def assert_refused(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "error: refusing to start with these secrets:" in result.output, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


@pytest.mark.parametrize("command", PROCESS_COMMANDS, ids=" ".join)
def test_a_process_with_a_shipped_default_secret_does_not_start(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    strong_environment(monkeypatch)
    monkeypatch.setenv("BURGERNET_WEB__SECRET_KEY", "dev-only-change-me-please")
    assert_refused(invoke(command), "web.secret_key (env BURGERNET_WEB__SECRET_KEY) is a known default value")
    assert not (data_dir.parent / "rendered").exists()  # nothing was rendered with it


def test_short_empty_and_reused_secrets_are_refused_with_the_fix(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = strong_environment(monkeypatch)
    monkeypatch.setenv("BURGERNET_ASTERISK__AMI_SECRET", "Xk3-only-20-chars-ab")
    monkeypatch.setenv("BURGERNET_TWILIO__AUTH_TOKEN", values["web.secret_key"])
    monkeypatch.delenv("BURGERNET_REDIS__PASSWORD")
    result = invoke(["serve"])
    assert_refused(
        result,
        "asterisk.ami_secret (env BURGERNET_ASTERISK__AMI_SECRET) is too short (20 characters; at least 24)",
        "it comes from the environment variable BURGERNET_ASTERISK__AMI_SECRET",
        "twilio.auth_token (env BURGERNET_TWILIO__AUTH_TOKEN) has the same value as web.secret_key",
        "redis.password (env BURGERNET_REDIS__PASSWORD) is empty: run `burgernet secrets init`",
    )
    assert values["web.secret_key"] not in result.output  # the refusal never shows a secret


def test_a_default_secret_in_the_config_file_names_the_file(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    strong_environment(monkeypatch)
    monkeypatch.delenv("BURGERNET_ASTERISK__AMI_SECRET")
    config = tmp_path / "site.toml"
    config.write_text('[asterisk]\nami_secret = "change-me-ami-secret"\n')
    monkeypatch.setenv("BURGERNET_CONFIG", str(config))
    assert_refused(invoke(["worker"]), "asterisk.ami_secret", "known default", f"the config file {config}")


def test_a_real_worker_process_refuses_a_default_secret(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    strong_environment(monkeypatch)
    monkeypatch.setenv("BURGERNET_TWILIO__AUTH_TOKEN", "change-me-twilio-auth-token")
    finished = subprocess.run(
        [sys.executable, "-m", "composition.cli", "worker"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2, finished.stderr
    assert "error: refusing to start" in finished.stderr
    assert "twilio.auth_token (env BURGERNET_TWILIO__AUTH_TOKEN) is a known default value" in finished.stderr
    assert "Traceback" not in finished.stderr


def test_the_first_run_generates_a_private_secrets_file_that_every_load_reads(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A known-default SMTP password stops `run` right after it made the secrets (nothing starts).
    monkeypatch.setenv("BURGERNET_SMTP__PASSWORD", "changeme")
    result = invoke(["run"])
    assert_refused(result, "smtp.password (env BURGERNET_SMTP__PASSWORD) is a known default value")
    assert result.output.startswith("generated web.secret_key, asterisk.ami_secret, twilio.auth_token, ")
    assert "web.secret_key (env" not in result.output  # the generated ones pass

    secrets_file = data_dir / "secrets.toml"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o750  # created under umask 027
    stored = read_secrets_file(data_dir)
    assert set(stored) == set(SECRET_ENV)
    assert len(set(stored.values())) == len(SECRET_ENV) and all(len(value) >= 43 for value in stored.values())

    first, second = load_settings(), load_settings()
    for settings in (first, second):
        assert settings.web.secret_key == stored["web.secret_key"]
        assert settings.asterisk.ami_secret == stored["asterisk.ami_secret"]
        assert settings.twilio.auth_token == stored["twilio.auth_token"]
        assert settings.redis.password == stored["redis.password"]
        assert settings.redis.url == f"redis://:{stored['redis.password']}@127.0.0.1:6379/0"

    monkeypatch.delenv("BURGERNET_SMTP__PASSWORD")
    again = invoke(["secrets", "init"])
    assert again.exit_code == 0 and "nothing changed" in again.output
    assert read_secrets_file(data_dir) == stored
    assert invoke(["secrets", "check"]).output == "secrets: all set, strong and different\n"

    # The environment still beats the file.
    override = generate()
    monkeypatch.setenv("BURGERNET_WEB__SECRET_KEY", override)
    assert load_settings().web.secret_key == override


def test_rotate_replaces_one_secret_atomically_and_says_what_to_restart(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert invoke(["secrets", "init"]).exit_code == 0
    before = read_secrets_file(data_dir)
    result = invoke(["secrets", "rotate", "asterisk.ami_secret"])
    assert result.exit_code == 0, result.output
    assert "asterisk.ami_secret rotated" in result.output and "restart Asterisk" in result.output
    after = read_secrets_file(data_dir)
    assert after["asterisk.ami_secret"] != before["asterisk.ami_secret"]
    assert {k: v for k, v in after.items() if k != "asterisk.ami_secret"} == {
        k: v for k, v in before.items() if k != "asterisk.ami_secret"
    }
    assert stat.S_IMODE((data_dir / "secrets.toml").stat().st_mode) == 0o600
    assert [p.name for p in data_dir.iterdir()] == ["secrets.toml"]  # no temporary file left

    unknown = invoke(["secrets", "rotate", "web.port"])
    assert unknown.exit_code == 2 and "Invalid value" in unknown.output


def test_a_secrets_file_others_can_read_is_refused(data_dir: Path) -> None:
    assert invoke(["secrets", "init"]).exit_code == 0
    (data_dir / "secrets.toml").chmod(0o644)
    assert_refused(invoke(["web", "serve"]), "is readable by others (mode 0644): chmod 600")


def test_redis_requires_its_password(tmp_path: Path) -> None:
    server = ManagedRedis(free_port(), tmp_path / "redis")
    server.start()
    try:
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=2).ping()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=server.port, password="wrong-" + generate()).ping()
        assert redis.Redis.from_url(server.url, socket_timeout=2).ping()

        assert server.process is not None
        command_line = Path(f"/proc/{server.process.pid}/cmdline").read_bytes()
        assert server.password.encode() not in command_line  # not visible in ps
        assert stat.S_IMODE(server.config_file.stat().st_mode) == 0o600
        assert server.password not in server.display_url and "***" in server.display_url
    finally:
        server.stop()


def test_the_redis_password_setting_goes_into_every_client_url() -> None:
    password = generate()
    settings = load_settings(redis={"url": "redis://127.0.0.1:6390/2", "password": password})
    assert settings.redis.url == f"redis://:{password}@127.0.0.1:6390/2"
    assert redact_url(settings.redis.url) == "redis://:***@127.0.0.1:6390/2"
    given = load_settings(redis={"url": "redis://:theirs@10.0.0.5:6379/0", "password": password})
    assert given.redis.url == "redis://:theirs@10.0.0.5:6379/0"  # a password in the URL wins
