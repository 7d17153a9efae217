"""Configuration of the WeChat channel: where the gateway is, and how politely to talk to it.

Kept apart from the channel so that ``bot.server`` can decide whether the channel is configured
at all (and fail fast with a one-line, token-free message) without touching any gRPC code.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENDPOINT_RE = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(?P<port>\d{1,5})$")


class WechatySettings(BaseSettings):
    """How to reach the puppet-service gateway, and how politely to talk to WeChat.

    Endpoint and token are read from ``FANZHA_WECHATY_ENDPOINT`` / ``FANZHA_WECHATY_TOKEN``
    first, then from Wechaty's standard ``WECHATY_PUPPET_SERVICE_ENDPOINT`` /
    ``WECHATY_PUPPET_SERVICE_TOKEN``: the project's own names win when both are set.
    """

    model_config = SettingsConfigDict(
        env_prefix="FANZHA_WECHATY_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("FANZHA_WECHATY_ENDPOINT", "WECHATY_PUPPET_SERVICE_ENDPOINT"),
        description="host:port of the puppet-service gateway (plain h2c, no TLS)",
    )
    token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("FANZHA_WECHATY_TOKEN", "WECHATY_PUPPET_SERVICE_TOKEN"),
        description="the gateway's token (sent as the HTTP/2 :authority)",
    )
    send_interval_room: float = Field(default=1.0, ge=0, le=60, description="s between sends to one conversation")
    send_interval_global: float = Field(default=0.2, ge=0, le=60, description="s between any two sends")
    max_reply_chars: int = Field(default=600, ge=40, le=10_000, description="longer replies are split")
    send_retries: int = Field(default=3, ge=1, le=10, description="tries per outgoing message")
    send_retry_backoff: float = Field(default=1.0, ge=0, le=60, description="s before the 2nd try, doubled after")
    watchdog_minutes: float = Field(default=5.0, gt=0, le=120, description="no event this long -> reconnect")
    reconnect_backoff: float = Field(default=1.0, gt=0, le=600, description="first reconnect delay, s")
    reconnect_backoff_max: float = Field(default=60.0, gt=0, le=3600, description="reconnect delay cap, s")
    history_skew: float = Field(default=10.0, ge=0, le=3600, description="s of clock skew allowed for history")
    rpc_timeout: float = Field(default=15.0, gt=0, le=300, description="s per gateway call")
    max_concurrency: int = Field(default=8, ge=1, le=256, description="conversations handled at once")
    bot_name: str | None = Field(
        default=None, max_length=64,
        description="extra name for '@name' detection when the gateway reports none",
    )

    @field_validator("endpoint", mode="before")
    @classmethod
    def _endpoint(cls, v: object) -> object:
        if v is None:
            return None
        v = str(v).strip()
        if not v:
            return None
        if "://" in v:
            raise ValueError("use host:port without a scheme (the client speaks plain h2c, no TLS)")
        m = ENDPOINT_RE.match(v)
        if m is None or not 0 < int(m.group("port")) < 65536:
            raise ValueError("must be host:port, e.g. 10.0.0.5:8788")
        return v

    @field_validator("token", mode="before")
    @classmethod
    def _token(cls, v: object) -> object:
        if v is None:
            return None
        raw = v.get_secret_value() if isinstance(v, SecretStr) else str(v)
        raw = raw.strip()
        return raw or None

    @property
    def host_port(self) -> tuple[str, int]:
        assert self.endpoint is not None
        host, _, port = self.endpoint.rpartition(":")
        return host.strip("[]"), int(port)



_ENV_NAMES = {
    "endpoint": "FANZHA_WECHATY_ENDPOINT / WECHATY_PUPPET_SERVICE_ENDPOINT",
    "token": "FANZHA_WECHATY_TOKEN / WECHATY_PUPPET_SERVICE_TOKEN",
}


def wechaty_settings_from_env(**overrides: Any) -> WechatySettings | None:
    """The WeChat channel's settings, or None when it is not configured at all.

    Raises ``ValueError`` (one line, naming the variable) when only one of endpoint and token
    is set, or when a value is invalid. The token's value never appears in the message.
    """
    try:
        settings = WechatySettings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]).lower() if err["loc"] else "settings"
        field = next((f for f in _ENV_NAMES if f in field), field)  # aliases name the env var
        name = _ENV_NAMES.get(field, "FANZHA_WECHATY_" + field.upper())
        shown = "" if field == "token" else f" (got {err.get('input')!r})"
        raise ValueError(f"{name}: {err['msg']}{shown}") from None
    if settings.endpoint is None and settings.token is None:
        return None
    if settings.endpoint is None:
        raise ValueError(
            "WECHATY_PUPPET_SERVICE_TOKEN is set but WECHATY_PUPPET_SERVICE_ENDPOINT is not: set the "
            "gateway's host:port (token-only discovery over the internet is not supported)"
        )
    if settings.token is None:
        raise ValueError(
            "WECHATY_PUPPET_SERVICE_ENDPOINT is set but WECHATY_PUPPET_SERVICE_TOKEN is not: "
            "the puppet-service gateway needs its token (any non-empty string it was started with)"
        )
    return settings
