"""Callback requests built the way the WeChat servers build them (the other side of the wire).

Deliberately independent of ``bot.channels.wxbase``: the framing here uses ``cryptography``'s
own PKCS#7 padder (256-bit blocks) and ``struct`` directly, so a shared mistake cannot make
both sides agree. The framing itself is checked against wechatpy's published vectors in
tests/test_wx_crypto.py.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import time

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

MP_TOKEN = "mptoken123"
KF_TOKEN = "kftoken456"
# 43-character EncodingAESKeys (what the admin consoles generate)
MP_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
KF_AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
ACCOUNT = "gh_0123456789ab"


def sha1(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def encrypt(aes_key_43: str, receive_id: str, message: bytes, *, random16: bytes | None = None,
            pad: bytes | None = None) -> str:
    key = base64.b64decode(aes_key_43 + "=")
    body = (random16 or os.urandom(8).hex().encode()) + struct.pack(">I", len(message)) + message + receive_id.encode()
    if pad is None:
        padder = padding.PKCS7(256).padder()
        body = padder.update(body) + padder.finalize()
    else:
        # deliberately broken padding (for the bad-input tests), filled to whole AES blocks
        body += b"\x07" * ((-len(body) - len(pad)) % 16) + pad
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(body) + enc.finalize()).decode()


def decrypt(aes_key_43: str, ciphertext: str) -> tuple[bytes, bytes]:
    """(message, receive_id) of an encrypted reply."""
    key = base64.b64decode(aes_key_43 + "=")
    dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = dec.update(base64.b64decode(ciphertext)) + dec.finalize()
    unpadder = padding.PKCS7(256).unpadder()
    plain = unpadder.update(plain) + unpadder.finalize()
    (n,) = struct.unpack(">I", plain[16:20])
    return plain[20:20 + n], plain[20 + n:]


def mp_text(user: str, content: str, msg_id: str, created: int | None = None) -> str:
    return (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
            f"<CreateTime>{created or int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>")


def mp_voice(user: str, recognition: str, msg_id: str) -> str:
    return (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[voice]]></MsgType>"
            f"<MediaId><![CDATA[media_id]]></MediaId><Format><![CDATA[amr]]></Format>"
            f"<Recognition><![CDATA[{recognition}]]></Recognition><MsgId>{msg_id}</MsgId></xml>")


def mp_image(user: str, msg_id: str) -> str:
    return (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[image]]></MsgType>"
            f"<PicUrl><![CDATA[http://example.invalid/p.jpg]]></PicUrl><MediaId><![CDATA[m]]></MediaId>"
            f"<MsgId>{msg_id}</MsgId></xml>")


def mp_event(user: str, event: str, created: int | None = None) -> str:
    return (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
            f"<CreateTime>{created or int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[{event}]]></Event></xml>")


def mp_plain_query(token: str = MP_TOKEN, timestamp: int | None = None, nonce: str | None = None) -> dict[str, str]:
    """A plain-mode query; like WeChat, a fresh random nonce for every request unless given."""
    ts = str(timestamp or int(time.time()))
    nonce = nonce if nonce is not None else str(int.from_bytes(os.urandom(4), "big"))
    return {"signature": sha1(token, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": "o"}


def mp_safe(xml: str, app_id: str, *, aes_key: str = MP_AES_KEY, timestamp: int | None = None,
            nonce: str = "7654321", pad: bytes | None = None) -> tuple[dict[str, str], str]:
    """(query, body) of a safe-mode POST, as WeChat sends it."""
    ts = str(timestamp or int(time.time()))
    enc = encrypt(aes_key, app_id, xml.encode(), pad=pad)
    query = {"signature": sha1(MP_TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": "o",
             "encrypt_type": "aes", "msg_signature": sha1(MP_TOKEN, ts, nonce, enc)}
    body = f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt></xml>"
    return query, body


def kf_event_callback(corp_id: str, kfid: str | None, sync_token: str, *, timestamp: int | None = None,
                      nonce: str = "99887766") -> tuple[dict[str, str], str]:
    """(query, body) of the 'messages waiting' callback 企业微信 sends for a 客服 account
    (``kfid`` None: the older form that names no account)."""
    account = f"<OpenKfId><![CDATA[{kfid}]]></OpenKfId>" if kfid is not None else ""
    inner = (f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><CreateTime>{int(time.time())}</CreateTime>"
             f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]></Event>"
             f"<Token><![CDATA[{sync_token}]]></Token>{account}</xml>")
    ts = str(timestamp or int(time.time()))
    enc = encrypt(KF_AES_KEY, corp_id, inner.encode())
    query = {"msg_signature": sha1(KF_TOKEN, ts, nonce, enc), "timestamp": ts, "nonce": nonce}
    body = (f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt>"
            f"<AgentID><![CDATA[]]></AgentID></xml>")
    return query, body
