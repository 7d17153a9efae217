"""Configuration of the 公众号 channel (``FANZHA_MP_*``), kept apart from the channel code.

``FANZHA_MP_TOKEN`` switches the channel on; the AppID and AppSecret are then required (the
extra messages of a multi-message answer go through the customer-service API, which needs an
access token), and ``FANZHA_MP_AES_KEY`` adds safe mode. Errors are one line naming the
variable and never show a secret's value.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.channels.wxbase.settings_checks import blank_to_none, checked_aes_key, checked_api_base, one_line_error

TOKEN_RE = re.compile(r"^[A-Za-z0-9]{3,32}$")
"""The admin console allows 3-32 letters and digits for the Token."""
SECRET_FIELDS = frozenset({"token", "app_secret", "aes_key"})


class MpSettings(BaseSettings):
    """The 公众号's callback credentials and how politely to use the customer-service API."""

    model_config = SettingsConfigDict(env_prefix="FANZHA_MP_", env_file=".env", env_file_encoding="utf-8",
                                      extra="ignore")

    token: SecretStr | None = Field(default=None, description="the Token pasted in 服务器配置")
    app_id: str | None = Field(default=None, description="开发者ID(AppID), wx...")
    app_secret: SecretStr | None = Field(default=None, description="开发者密码(AppSecret)")
    aes_key: SecretStr | None = Field(default=None, description="EncodingAESKey (43 chars): safe mode")
    api_base: str = Field(default="https://api.weixin.qq.com", description="tests point it at a local fake")
    reply_budget_s: float = Field(default=4.0, gt=0, le=4.8,
                                  description="wait this long for the pipeline before answering 'success'")
    max_clock_skew_s: int = Field(default=300, ge=10, le=86_400, description="older/newer timestamps are refused")
    send_interval_user_s: float = Field(default=1.0, ge=0, le=60, description="s between sends to one user")
    send_interval_global_s: float = Field(default=0.05, ge=0, le=60, description="s between any two sends")
    send_retries: int = Field(default=4, ge=1, le=10)
    send_retry_backoff_s: float = Field(default=1.0, ge=0, le=60, description="doubled after each try")
    max_reply_bytes: int = Field(default=2000, ge=200, le=2048, description="longer replies are split")
    passive_only: bool = Field(default=False,
                               description="the account has no customer-service API (e.g. an unverified 订阅号): "
                                           "every answer goes into the one passive reply")
    max_sends_per_message: int = Field(default=5, ge=1, le=5,
                                       description="customer-service messages per user message (WeChat's quota)")

    @field_validator("token", "app_secret", "aes_key", mode="before")
    @classmethod
    def _blank_is_none(cls, v: object) -> object:
        return blank_to_none(v)

    @field_validator("app_id", mode="before")
    @classmethod
    def _app_id(cls, v: object) -> object:
        return blank_to_none(v)

    @field_validator("token")
    @classmethod
    def _token_shape(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not TOKEN_RE.match(v.get_secret_value()):
            raise ValueError("must be 3-32 letters or digits, as in the admin console")
        return v

    @field_validator("aes_key")
    @classmethod
    def _aes_shape(cls, v: SecretStr | None) -> SecretStr | None:
        return checked_aes_key(v)

    @field_validator("api_base")
    @classmethod
    def _base(cls, v: str) -> str:
        return checked_api_base(v)


def mp_settings_from_env(**overrides: Any) -> MpSettings | None:
    """The channel's settings, or None when ``FANZHA_MP_TOKEN`` is unset; ValueError (one line)."""
    try:
        s = MpSettings(**overrides)
    except ValidationError as exc:
        raise one_line_error(exc, "MP", SECRET_FIELDS) from None
    if s.token is None:
        if s.app_id or s.app_secret or s.aes_key:
            raise ValueError("FANZHA_MP_TOKEN is not set, but other FANZHA_MP_* settings are: "
                             "set the Token from the 公众号 admin console to enable the channel")
        return None
    missing = [name for name, value in (("FANZHA_MP_APP_ID", s.app_id), ("FANZHA_MP_APP_SECRET", s.app_secret))
               if value is None]
    if missing:
        raise ValueError(f"{' and '.join(missing)} not set: the 公众号 channel needs them to send the "
                         "rest of a multi-message answer (customer-service API)")
    return s
