"""Configuration of the 企业微信 微信客服 channel (``FANZHA_KF_*``), apart from the channel code.

The four credentials come from two places of the 企业微信 admin console: the CorpID (我的企业)
and, under 微信客服 → API, the Secret and the callback's Token and EncodingAESKey. Setting
any of them switches the channel on, and then all four are required. Errors are one line
naming the variable and never show a secret's value.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.channels.wxbase.settings_checks import blank_to_none, checked_aes_key, checked_api_base, one_line_error

TOKEN_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")
SECRET_FIELDS = frozenset({"secret", "token", "aes_key"})
REQUIRED = ("corp_id", "secret", "token", "aes_key")


class KfSettings(BaseSettings):
    """The 微信客服 callback and API credentials, and the platform's limits."""

    model_config = SettingsConfigDict(env_prefix="FANZHA_KF_", env_file=".env", env_file_encoding="utf-8",
                                      extra="ignore")

    corp_id: str | None = Field(default=None, description="企业ID (ww...)")
    secret: SecretStr | None = Field(default=None, description="微信客服 Secret")
    token: SecretStr | None = Field(default=None, description="callback Token")
    aes_key: SecretStr | None = Field(default=None, description="callback EncodingAESKey (43 chars)")
    api_base: str = Field(default="https://qyapi.weixin.qq.com", description="tests point it at a local fake")
    servicer_userid: str | None = Field(
        default=None, max_length=64,
        description="企业微信 userid of the human servicer that 人工 hands over to; unset = no human",
    )
    max_clock_skew_s: int = Field(default=300, ge=10, le=86_400, description="older/newer timestamps are refused")
    sync_limit: int = Field(default=200, ge=1, le=1000, description="messages per kf/sync_msg page")
    send_interval_user_s: float = Field(default=0.5, ge=0, le=60, description="s between sends to one customer")
    send_interval_global_s: float = Field(default=0.05, ge=0, le=60, description="s between any two sends")
    send_retries: int = Field(default=4, ge=1, le=10)
    send_retry_backoff_s: float = Field(default=1.0, ge=0, le=60, description="doubled after each try")
    max_reply_bytes: int = Field(default=2000, ge=200, le=2048, description="longer replies are split")
    max_sends_per_message: int = Field(default=5, ge=1, le=5,
                                       description="the platform allows 5 messages per customer message")
    send_window_s: int = Field(default=48 * 3600, ge=60, le=48 * 3600,
                               description="the platform allows sends this long after the customer's message")
    first_pull_max_age_s: int = Field(
        default=600, ge=0, le=48 * 3600,
        description="with no cursor stored yet (first start, Redis lost), older messages are not answered",
    )

    @field_validator("secret", "token", "aes_key", mode="before")
    @classmethod
    def _blank_secret(cls, v: object) -> object:
        return blank_to_none(v)

    @field_validator("corp_id", "servicer_userid", mode="before")
    @classmethod
    def _blank(cls, v: object) -> object:
        return blank_to_none(v)

    @field_validator("token")
    @classmethod
    def _token_shape(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not TOKEN_RE.match(v.get_secret_value()):
            raise ValueError("must be up to 32 letters or digits, as in the admin console")
        return v

    @field_validator("aes_key")
    @classmethod
    def _aes_shape(cls, v: SecretStr | None) -> SecretStr | None:
        return checked_aes_key(v)

    @field_validator("api_base")
    @classmethod
    def _base(cls, v: str) -> str:
        return checked_api_base(v)


def kf_settings_from_env(**overrides: Any) -> KfSettings | None:
    """The channel's settings, or None when none of the four credentials is set; ValueError (one line)."""
    try:
        s = KfSettings(**overrides)
    except ValidationError as exc:
        raise one_line_error(exc, "KF", SECRET_FIELDS) from None
    present = [f for f in REQUIRED if getattr(s, f) is not None]
    if not present:
        return None
    missing = [f"FANZHA_KF_{f.upper()}" for f in REQUIRED if getattr(s, f) is None]
    if missing:
        raise ValueError(f"{', '.join(missing)} not set: the 微信客服 channel needs the CorpID, the Secret "
                         "and the callback Token and EncodingAESKey")
    return s
