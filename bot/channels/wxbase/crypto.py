"""WeChat callback crypto: the SHA-1 signatures and the AES "safe mode" message encryption.

The scheme (identical for 公众号 and 企业微信): the key is the 43-character EncodingAESKey
plus ``=``, base64-decoded to 32 bytes; AES-256-CBC with the IV = the key's first 16 bytes;
the plaintext is ``random(16) + len(msg) as 4 bytes big-endian + msg + receive_id`` padded
PKCS#7-style to a multiple of **32** bytes. ``receive_id`` is the 公众号's AppID or the
企业微信 CorpID and must match on decryption. Signatures are the SHA-1 of the sorted,
concatenated strings. AES itself comes from ``cryptography``; this module only frames it,
and rejects anything malformed (bad base64, block size, padding or length) with
``CryptoError`` instead of guessing, as wechatpy's ``_decrypt`` does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32
"""WeChat's PKCS#7 block size (not AES's 16)."""


class CryptoError(ValueError):
    """The ciphertext is malformed; ``reason`` is a short fixed word, safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WrongReceiver(CryptoError):
    """Decrypted fine, but for another AppID/CorpID."""

    def __init__(self) -> None:
        super().__init__("wrong_receiver")


def signature(*parts: str) -> str:
    """SHA-1 hex of the parts sorted and concatenated (WeChat's ``signature``/``msg_signature``)."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def signature_ok(given: str | None, *parts: str) -> bool:
    """Constant-time check of a signature (a missing one is simply wrong)."""
    if not given:
        return False
    return secrets.compare_digest(given.lower().encode("ascii", "replace"), signature(*parts).encode("ascii"))


def timestamp_fresh(timestamp: str, max_skew_s: float, now: float) -> bool:
    """``timestamp`` is plain ASCII decimal seconds within ``max_skew_s`` of ``now``.

    ``str.isdigit`` alone also accepts superscripts and other Unicode digits that ``int``
    then refuses (a 500) or reads (Arabic-Indic digits), so only ASCII digits count here.
    """
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return False
    return abs(now - int(timestamp)) <= max_skew_s


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte key from the 43-character EncodingAESKey; ValueError if it is not one."""
    if len(encoding_aes_key) != 43:
        raise ValueError("EncodingAESKey must be 43 characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error:
        raise ValueError("EncodingAESKey is not base64") from None
    if len(key) != 32:
        raise ValueError("EncodingAESKey does not decode to 32 bytes")
    return key


class MessageCrypto:
    """Encrypt/decrypt callback payloads for one receiver (AppID or CorpID)."""

    def __init__(self, encoding_aes_key: str, receive_id: str) -> None:
        self.key = aes_key(encoding_aes_key)
        self.receive_id = receive_id.encode("utf-8")

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def encrypt(self, message: bytes, nonce16: bytes | None = None) -> str:
        """Base64 ciphertext of ``message``; ``nonce16`` (16 bytes) only for known-answer tests."""
        prefix = nonce16 if nonce16 is not None else secrets.token_urlsafe(12)[:16].encode()
        if len(prefix) != 16:
            raise ValueError("nonce16 must be 16 bytes")
        body = prefix + struct.pack(">I", len(message)) + message + self.receive_id
        pad = BLOCK - len(body) % BLOCK
        body += bytes([pad]) * pad
        enc = self._cipher().encryptor()
        return base64.b64encode(enc.update(body) + enc.finalize()).decode("ascii")

    def decrypt(self, ciphertext: str) -> bytes:
        """The message inside ``ciphertext``; CryptoError for anything malformed or foreign."""
        try:
            raw = base64.b64decode(ciphertext, validate=True)
        except (binascii.Error, ValueError):
            raise CryptoError("bad_base64") from None
        if not raw or len(raw) % 16:
            raise CryptoError("bad_block_size")
        dec = self._cipher().decryptor()
        plain = dec.update(raw) + dec.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise CryptoError("bad_padding")
        body = plain[:-pad]
        if len(body) < 20:
            raise CryptoError("too_short")
        (length,) = struct.unpack(">I", body[16:20])
        if 20 + length > len(body):
            raise CryptoError("bad_length")
        message, receiver = body[20:20 + length], body[20 + length:]
        if not secrets.compare_digest(receiver, self.receive_id):
            raise WrongReceiver()
        return message
