"""`nft -f -` in process (libnftables) and through the nft command: the same answer for the same
text.  Only text that fails to parse is sent here: nothing reaches the kernel's ruleset."""

import shutil

import pytest

from envtool.errors import HostError
from envtool.network import nft


@pytest.fixture(params=["lib", "exec"])
def way(request, monkeypatch):
    if shutil.which("nft") is None and not nft.os.path.exists("/usr/sbin/nft"):
        pytest.skip("nftables is not installed")
    monkeypatch.setattr(nft, "_lib", [])
    if request.param == "exec":
        monkeypatch.setenv("ENVTOOL_NFT", "exec")
    else:
        monkeypatch.delenv("ENVTOOL_NFT", raising=False)
    yield request.param
    nft._lib.clear()


def test_a_syntax_error_is_named_both_ways(way):
    with pytest.raises(HostError, match=r"nft -f - failed: .*syntax error"):
        nft._nft("-f", "-", stdin="table ip envtool-t { chain c { this is not nft } }\n")
    assert (nft._libnftables() is not None) == (way == "lib")


def test_unchecked_failure_is_a_returncode(way):
    proc = nft._nft("-f", "-", stdin="frobnicate\n", check=False)
    assert proc.returncode != 0 and "frobnicate" in proc.stderr
