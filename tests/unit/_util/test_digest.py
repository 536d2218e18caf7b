"""sha256 digests: CPython's own SHA-256 for small data, OpenSSL's for large, the same digests."""

import hashlib
import subprocess
import sys

import pytest

from envtool._util.digest import SMALL, sha256_bytes, small_sha256_hex


@pytest.mark.parametrize("data", [b"", b"abc", b"x" * 63, b"x" * 64, bytes(range(256)) * 300, b"y" * (SMALL - 1),
                                  b"z" * SMALL, b"w" * (SMALL + 1)])
def test_the_same_digest_as_hashlib(data):
    expected = hashlib.sha256(data).hexdigest()
    assert small_sha256_hex(data) == expected
    assert sha256_bytes(data) == "sha256:" + expected


def test_small_data_loads_no_openssl():
    probe = ("import sys\nfrom envtool._util.digest import sha256_bytes\n"
             "sha256_bytes(b'{}' * 1000)\nprint('_hashlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
