"""Content digests ("sha256:<hex>") and canonical JSON bytes."""

from __future__ import annotations

import importlib
import json
import re
from typing import Any

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def sha256_bytes(data: bytes) -> str:
    if len(data) < SMALL:
        return "sha256:" + small_sha256_hex(data)
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


SMALL = 1 << 20          # below this, loading OpenSSL costs more than its faster SHA-256 saves


def small_sha256_hex(data: bytes) -> str:
    """SHA-256 of a few bytes (a manifest, a name, a cache key) by CPython's own implementation
    where there is one (3.11's _sha256, 3.12's _sha2): the same digest without loading OpenSSL's
    libcrypto, ~3 ms of a command that hashes nothing large.  Large data goes through hashlib,
    whose OpenSSL SHA-256 is several times faster."""
    for name in ("_sha256", "_sha2"):
        try:
            return str(importlib.import_module(name).sha256(data).hexdigest())
        except (ImportError, AttributeError):
            continue
    import hashlib

    return hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace: the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest_hex(digest: str) -> str:
    if not DIGEST_RE.match(digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return digest.split(":", 1)[1]


def short(digest: str, n: int = 12) -> str:
    return digest.split(":", 1)[-1][:n]
