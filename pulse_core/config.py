"""Deployment settings, read from `PULSE_*` environment variables."""

from __future__ import annotations

import ipaddress
from email.utils import parseaddr
from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit

import platformdirs
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

KNOWN_DEFAULT_SECRETS = frozenset({"", "changeme", "change-me", "secret", "pulse", "pulse-demo"})
MIN_SECRET_LENGTH = 32


class ConfigError(ValueError):
    """The settings cannot run a safe deployment; the message says what to set."""


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("campaign-pulse", appauthor=False))


class Settings(BaseSettings):
    """One deployment's settings. Every field has a `PULSE_<NAME>` environment variable."""

    # Errors never echo the input: it holds the secret key and the SMTP password.
    model_config = SettingsConfigDict(
        env_prefix="PULSE_", extra="ignore", hide_input_in_errors=True
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None
    redis_url: str | None = None
    secret_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8765
    demo: bool = False
    # Log level of every process; unset: "info" for `pulse server` and `pulse worker` (an access
    # line per request, arq's line per job), "warning" for the other commands.
    log_level: Literal["debug", "info", "warning", "error"] | None = None
    # "text": time, level, logger, message per line; "json": one JSON object per line.
    log_format: Literal["text", "json"] = "text"

    token_ttl_seconds: int = 12 * 3600
    event_retention_days: float = 7.0
    # How long the audit trail is kept; unset keeps it forever.
    audit_retention_days: float | None = Field(default=None, gt=0)
    # Live frames held for one subscription while its replay is sent (and, on the ASGI
    # fallback path, frames queued per WebSocket) before it is closed as a slow consumer.
    send_queue_frames: int = 1024
    # Bytes a WebSocket's connection may hold unsent before it is closed as a slow consumer.
    send_buffer_bytes: int = Field(default=1024 * 1024, ge=64 * 1024)
    max_topics_per_connection: int = 200
    login_attempts_per_minute: int = 10
    # Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed: comma-separated
    # addresses or networks (10.0.0.0/8). Unset: the connection's own address is the client's.
    trusted_proxies: str | None = None
    # The largest request body accepted (413 above it); 1,000 ingested events are about 200 KB.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)

    # Email notifications (docs/notifications.md): smtp://user:password@host:port, or smtps://
    # for TLS from the start; user and password URL-encoded. Secret: never printed or logged.
    smtp_url: SecretStr | None = None
    # The From of the emails, e.g. "Campaign Pulse <pulse@example.com>"; needed with the above.
    mail_from: str | None = None
    # Without PULSE_SMTP_URL, emails are written as .eml files into this folder (`pulse up`
    # sets <data dir>/mail); with neither, nobody is emailed.
    mail_dir: Path | None = None
    # How often the workers look for emails to send.
    mail_poll_seconds: int = Field(default=10, ge=1, le=60)
    # The first email about a campaign waits this long for the events that follow (a launch's
    # target and offers come seconds apart); after it, one email per user and campaign at most
    # every PULSE_MAIL_GAP_SECONDS, listing what happened meanwhile.
    mail_wait_seconds: float = Field(default=20.0, ge=0)
    mail_gap_seconds: float = Field(default=300.0, gt=0)

    # Each batch is one INSERT ... SELECT: 100,000 members take 10 of them (not 200).
    populate_batch_size: int = 10_000
    offer_batch_size: int = 10_000
    offer_activation_delay_seconds: float = 5.0
    populate_retry_seconds: float = 0.5
    demo_traffic_interval_seconds: int = 3
    # A job running longer than this is cancelled and tried again: keep it above the longest job.
    job_timeout_seconds: int = Field(default=600, ge=1)
    # A job holds a lease from the moment a worker takes it, renewed every third of this while
    # it runs: the job of a worker that died is given to another worker once the lease runs out.
    job_lease_seconds: float = Field(default=15.0, ge=1.0)

    # False turns off the broadcast latency and HTTP request metrics (`/metrics` then answers 404).
    metrics_enabled: bool = True
    # When set, `/metrics` and a worker's metrics port want `Authorization: Bearer <token>`.
    metrics_token: str | None = None
    # A worker serves its Prometheus metrics on this port (at PULSE_HOST) when set.
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # The slow-update alert: an error is logged (once a minute) while the p99 of the broadcast
    # latency over the last minute is above this many milliseconds.
    slow_broadcast_ms: float = Field(default=1000.0, gt=0)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_addresses(cls, value: str | None) -> str | None:
        entries = [entry.strip() for entry in (value or "").split(",") if entry.strip()]
        for entry in entries:
            try:
                ipaddress.ip_network(entry) if "/" in entry else ipaddress.ip_address(entry)
            except ValueError:
                raise ConfigError(
                    f"PULSE_TRUSTED_PROXIES: {entry!r} is not an IP address or network "
                    "(for example 10.0.0.5 or 10.0.0.0/8)"
                ) from None
        return ",".join(entries) or None

    @model_validator(mode="after")
    def _mail_settings(self) -> Self:
        if self.mail_from is not None and "@" not in parseaddr(self.mail_from)[1]:
            raise ConfigError(
                "PULSE_MAIL_FROM must be an email address, e.g. Campaign Pulse <pulse@example.com>"
            )
        if self.smtp_url is None:
            return self
        url = urlsplit(self.smtp_url.get_secret_value())
        try:
            valid = url.scheme in ("smtp", "smtps") and bool(url.hostname) and url.port != 0
        except ValueError:  # a port that is not a number
            valid = False
        if not valid:
            raise ConfigError(
                "PULSE_SMTP_URL must look like smtp://user:password@host:port "
                "(smtps:// for TLS from the start)"
            )
        if self.mail_from is None:
            raise ConfigError(
                "PULSE_SMTP_URL is set but PULSE_MAIL_FROM is not: set the From of the emails, "
                "e.g. Campaign Pulse <pulse@example.com>"
            )
        return self

    @model_validator(mode="after")
    def _require_real_secret(self) -> Self:
        if self.demo:
            return self
        if self.secret_key is None or self.secret_key.strip().lower() in KNOWN_DEFAULT_SECRETS:
            raise ConfigError(
                "PULSE_SECRET_KEY is not set or is a known default. Set it to a random value "
                "(for example: python -c 'import secrets; print(secrets.token_urlsafe(48))') "
                "and give every server of the deployment the same one."
            )
        if len(self.secret_key) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"PULSE_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters long"
            )
        return self

    @property
    def effective_database_url(self) -> str:
        """The configured URL with an async driver, or the SQLite file in the data directory."""
        url = self.database_url or f"sqlite:///{self.data_dir / 'pulse.sqlite3'}"
        return async_database_url(url)

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise ConfigError("PULSE_REDIS_URL is not set (for example redis://127.0.0.1:6379/0)")
        return self.redis_url

    def require_secret_key(self) -> str:
        if not self.secret_key:
            raise ConfigError("PULSE_SECRET_KEY is not set")
        return self.secret_key


def async_database_url(url: str) -> str:
    """Give a plain SQLAlchemy URL the async driver this project uses."""
    for plain, async_form in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return async_form + url[len(plain) :]
    return url
