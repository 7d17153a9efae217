"""Runtime settings, read from ``FANZHA_*`` environment variables and an optional ``.env``.

Operators configure the bot only through these; a bad value must stop start-up with one
readable line (``SettingsError``), never a traceback, because the person reading it is
often not the person who wrote the code.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_TOKEN_CHARS = 16
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
SECRET_FIELDS = frozenset({"api_token"})


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
    redis_cluster: bool = Field(default=False, description="FANZHA_REDIS_URL names one node of a Redis Cluster")
    redis_sentinels: str | None = Field(default=None, description="host:port,host:port of Redis Sentinels")
    redis_sentinel_master: str | None = Field(default=None, description="the master name the Sentinels watch")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    data_dir: Path = Field(default=Path("var"), description="Embedded Valkey data (AOF) lives here")
    key_prefix: str = Field(default="fanzha", pattern=r"^[a-z][a-z0-9_-]{0,31}$")

    session_ttl_s: int = Field(default=7 * 24 * 3600, ge=60, description="Storage TTL (GC)")
    resume_after_s: int = Field(
        default=30 * 60, ge=10, description="Idle time after which a returning user is asked to continue"
    )
    dedupe_ttl_s: int = Field(default=24 * 3600, ge=60)
    lock_ttl_ms: int = Field(
        default=3_000, ge=100,
        description="Lease of a conversation lock; renewed while held, so a crashed holder blocks this long at most",
    )
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
        v = v.strip()
        if "," in v or any(ch.isspace() for ch in v):
            raise ValueError(
                "one URL only (for a cluster name any one node and set FANZHA_REDIS_CLUSTER=true; "
                "for Sentinel set FANZHA_REDIS_SENTINELS and FANZHA_REDIS_SENTINEL_MASTER)"
            )
        if not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        try:
            parts = urlsplit(v)
            _ = parts.port  # raises on a port that is not a number
            db = parts.path.strip("/")
        except ValueError as exc:
            raise ValueError(f"not a valid URL ({exc})") from None
        if not v.startswith("unix://") and db and not db.isdigit():
            raise ValueError("the path must be a database number, as in redis://host:6379/0")
        return v

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinels(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        for item in v.split(","):
            host, _, port = item.strip().rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError("must be host:port,host:port")
        return v

    @field_validator("api_token")
    @classmethod
    def _token_strength(cls, v: SecretStr | None) -> SecretStr | None:
        # An empty value is "no token": it must never mean "authentication off" on a public
        # bind (that is refused below), and a short token is guessable.
        if v is None or not v.get_secret_value().strip():
            return None
        if len(v.get_secret_value()) < MIN_TOKEN_CHARS:
            raise ValueError(f"must be at least {MIN_TOKEN_CHARS} characters (a long random string)")
        return v

    @model_validator(mode="after")
    def _one_topology(self) -> Settings:
        if self.redis_sentinels and not self.redis_sentinel_master:
            raise ValueError("FANZHA_REDIS_SENTINEL_MASTER must name the master the Sentinels watch")
        if self.redis_sentinel_master and not self.redis_sentinels:
            raise ValueError("FANZHA_REDIS_SENTINELS must list the Sentinels (host:port,host:port)")
        if self.redis_sentinels and (self.redis_cluster or self.redis_url):
            raise ValueError("FANZHA_REDIS_SENTINELS replaces FANZHA_REDIS_URL/FANZHA_REDIS_CLUSTER: set only one")
        if self.redis_cluster and not self.redis_url:
            raise ValueError("FANZHA_REDIS_CLUSTER=true needs FANZHA_REDIS_URL (any one node of the cluster)")
        return self

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """``FANZHA_REDIS_SENTINELS`` as (host, port) pairs."""
        if not self.redis_sentinels:
            return []
        out = []
        for item in self.redis_sentinels.split(","):
            host, _, port = item.strip().rpartition(":")
            out.append((host.strip("[]"), int(port)))
        return out

    @property
    def exposed_without_token(self) -> bool:
        """True when the API would listen beyond loopback with no token: refused at start."""
        return self.api_token is None and self.http_host not in LOOPBACK_HOSTS


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, or raise SettingsError with one line."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        if not err["loc"]:  # a rule across variables: the message names them
            raise SettingsError(str(err["msg"]).removeprefix("Value error, ")) from None
        field_name = str(err["loc"][0])
        name = "FANZHA_" + field_name.upper()
        shown = err.get("input")
        secret = field_name in SECRET_FIELDS or (isinstance(shown, str) and "@" in shown)  # URL password
        got = "" if secret else f" (got {shown!r})"
        raise SettingsError(f"{name}: {str(err['msg']).removeprefix('Value error, ')}{got}") from None
    if settings.exposed_without_token:
        raise SettingsError(
            f"FANZHA_HTTP_HOST={settings.http_host} exposes the API beyond this machine: "
            "set FANZHA_API_TOKEN too"
        )
    return settings
