"""Checks shared by the official channels' settings (公众号 ``FANZHA_MP_*``, 微信客服 ``FANZHA_KF_*``).

Both read the same kinds of value from the same admin consoles (a Token, an EncodingAESKey, an
API base URL) and must fail start-up the same way: one line naming the variable, never a
secret's value.
"""

from __future__ import annotations

from collections.abc import Collection

from pydantic import SecretStr, ValidationError

from bot.channels.wxbase.crypto import aes_key


def blank_to_none(v: object) -> object:
    """An unset variable and one set to blanks both mean "not configured"; values are stripped."""
    raw = v.get_secret_value() if isinstance(v, SecretStr) else v
    if raw is None or not str(raw).strip():
        return None
    return str(raw).strip()


def checked_aes_key(v: SecretStr | None) -> SecretStr | None:
    """The 43-character EncodingAESKey must decode to 32 bytes (ValueError without the value)."""
    if v is not None:
        aes_key(v.get_secret_value())
    return v


def checked_api_base(v: str) -> str:
    """An http(s) base URL without a trailing slash."""
    v = v.strip().rstrip("/")
    if not v.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL")
    return v


def one_line_error(exc: ValidationError, prefix: str, secret_fields: Collection[str]) -> ValueError:
    """The first validation error as ``FANZHA_<prefix>_<FIELD>: why (got …)``; secrets not shown."""
    err = exc.errors()[0]
    field = str(err["loc"][0]) if err["loc"] else "settings"
    shown = "" if field in secret_fields else f" (got {err.get('input')!r})"
    return ValueError(f"FANZHA_{prefix}_{field.upper()}: {err['msg']}{shown}")
