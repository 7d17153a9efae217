"""The XML of WeChat callbacks: parsed safely, replies built with correct CDATA.

Parsing uses ``defusedxml`` (no DTDs, no entities, no external references: no XXE and no
billion-laughs); the callback body size is already capped by aiohttp before we get here.
WeChat's messages are one flat ``<xml>`` element whose children carry text, so they become a
``dict[str, str]``; nested elements (``ScanCodeInfo``...) keep only their own text.
"""

from __future__ import annotations

import time
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring


class XmlError(ValueError):
    """The body is not a WeChat XML message."""


def parse(body: bytes | str) -> dict[str, str]:
    """The children of the root ``<xml>`` as name → text (stripped of nothing: CDATA is exact)."""
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException, ValueError, TypeError) as exc:
        raise XmlError(type(exc).__name__) from None
    if root.tag != "xml":
        raise XmlError("root is not <xml>")
    return {child.tag: child.text or "" for child in root}


def cdata(text: str) -> str:
    """``text`` as CDATA; a literal ``]]>`` is split across two sections."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_reply(to_user: str, from_user: str, content: str, now: float | None = None) -> str:
    """A passive text reply (to = the user's OpenID, from = the account's original id)."""
    created = int(time.time() if now is None else now)
    return (
        f"<xml><ToUserName>{cdata(to_user)}</ToUserName><FromUserName>{cdata(from_user)}</FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content>{cdata(content)}</Content></xml>"
    )


def encrypted_envelope(encrypt: str, msg_signature: str, timestamp: str, nonce: str) -> str:
    """The safe-mode reply wrapper around an encrypted reply."""
    return (
        f"<xml><Encrypt>{cdata(encrypt)}</Encrypt><MsgSignature>{cdata(msg_signature)}</MsgSignature>"
        f"<TimeStamp>{timestamp}</TimeStamp><Nonce>{cdata(nonce)}</Nonce></xml>"
    )
