"""Runtime settings, read from ``FANZHA_*`` environment variables and an optional ``.env``.

Operators configure the bot only through these; a bad value must stop start-up with one
readable line (``SettingsError``), never a traceback, because the person reading it is
often not the person who wrote the code.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(Exception):
    """A setting is invalid; the message is one line naming the variable."""


class Settings(BaseSettings):
    """Every tunable of the runtime; defaults give a working bot on a laptop."""

    model_config = SettingsConfigDict(
        env_prefix="FANZHA_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    redis_url: str | None = Field(
        default=None, description="Redis/Valkey URL; unset = start the embedded Valkey"
    )
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    data_dir: Path = Field(default=Path("var"), description="Embedded Valkey data (AOF) lives here")
    key_prefix: str = Field(default="fanzha", pattern=r"^[a-z][a-z0-9_-]{0,31}$")

    session_ttl_s: int = Field(default=7 * 24 * 3600, ge=60, description="Storage TTL (GC)")
    resume_after_s: int = Field(
        default=30 * 60, ge=10, description="Idle time after which a returning user is asked to continue"
    )
    dedupe_ttl_s: int = Field(default=24 * 3600, ge=60)
    lock_ttl_ms: int = Field(default=10_000, ge=100, description="Above the worst dialog step")
    lock_wait_s: float = Field(default=5.0, gt=0)
    redis_timeout_s: float = Field(default=2.0, gt=0)

    max_text_chars: int = Field(default=2000, ge=100, description="Longer input is cut")
    rate_user_per_min: int = Field(default=20, ge=1)
    rate_room_per_min: int = Field(default=10, ge=1, description="Bot replies per room per minute")

    group_alert_cooldown_s: int = Field(default=120, ge=0, description="Min gap between alerts in a room")
    group_pattern_cooldown_s: int = Field(default=1800, ge=0, description="Same pattern in a room")
    bot_name: str = Field(default="反诈助手", min_length=1, max_length=32)

    api_token: SecretStr | None = Field(default=None, description="Bearer token for the HTTP API")
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    log_json: bool = True

    @field_validator("http_host")
    @classmethod
    def _host_not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v.strip()

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        if not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return v

    @property
    def exposed_without_token(self) -> bool:
        """True when the API would listen beyond loopback with no token: refused at start."""
        return self.api_token is None and self.http_host not in {"127.0.0.1", "localhost", "::1"}


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, or raise SettingsError with one line."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        name = "FANZHA_" + str(err["loc"][0]).upper() if err["loc"] else "settings"
        raise SettingsError(f"{name}: {err['msg']} (got {err.get('input')!r})") from None
    if settings.exposed_without_token:
        raise SettingsError(
            f"FANZHA_HTTP_HOST={settings.http_host} exposes the API beyond this machine: "
            "set FANZHA_API_TOKEN too"
        )
    return settings
