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


def test_command_lines_the_library_takes():
    assert nft._as_command(("-j", "-a", "list", "chain", "ip", "filter", "FORWARD")) == (
        (1 << 3) | (1 << 4), "list chain ip filter FORWARD\n")
    assert nft._as_command(("list", "tables")) == (0, "list tables\n")
    assert nft._as_command(("-c", "list", "tables")) is None      # an option it is not given here
    assert nft._as_command(("-j",)) is None


def _inheritable_fds() -> set[tuple[int, str]]:
    return {(fd, link) for fd, link in nft._open_fds() if _inheritable(fd)}


def _inheritable(fd: int) -> bool:
    try:
        return nft.os.get_inheritable(fd)
    except OSError:
        return False


@pytest.fixture
def lib(monkeypatch):
    monkeypatch.setattr(nft, "_lib", [])
    monkeypatch.delenv("ENVTOOL_NFT", raising=False)
    if nft._libnftables() is None:
        pytest.skip("libnftables is not installed")
    yield nft._libnftables()
    nft._lib.clear()


def _key() -> tuple[int, int]:
    return nft.os.getpid(), nft.os.stat("/proc/thread-self/ns/net").st_ino


def test_one_context_serves_the_process_its_socket_not_inherited_and_each_answer_its_own(lib):
    """The kept context (a closed one makes the kernel finish a deleting transaction then, ~20 ms
    each): the same one for every call, its netlink socket not passed to what the process execs,
    and each call's error text only its own."""
    before = _inheritable_fds()
    first = nft._nft("-f", "-", stdin="frobnicate\n", check=False)
    ctx = lib.contexts[_key()]
    second = nft._nft("-f", "-", stdin="wibble\n", check=False)
    assert lib.contexts == {_key(): ctx}
    assert "frobnicate" in first.stderr and "wibble" in second.stderr and "frobnicate" not in second.stderr
    assert _inheritable_fds() <= before


def test_a_forked_child_opens_its_own_context(lib):
    """After a fork the parent's socket may be closed (a daemon's double fork closes every fd) and
    its number taken by another file: the child must not write nft's messages to it."""
    nft._nft("-f", "-", stdin="frobnicate\n", check=False)
    parent = dict(lib.contexts)
    pid = nft.os.fork()
    if pid == 0:                                       # pragma: no cover - the child's verdict is its code
        ok = False
        try:
            proc = nft._nft("-f", "-", stdin="wibble\n", check=False)
            ok = _key() in lib.contexts and _key() not in parent and "wibble" in proc.stderr
        finally:
            nft.os._exit(0 if ok else 1)
    _, status = nft.os.waitpid(pid, 0)
    assert nft.os.waitstatus_to_exitcode(status) == 0
    after = nft._nft("-f", "-", stdin="frobnicate\n", check=False)     # the parent's still answers
    assert lib.contexts == parent and "frobnicate" in after.stderr


@pytest.mark.skipif(nft.os.geteuid() != 0, reason="unshare(CLONE_NEWNET) needs root")
def test_a_thread_in_another_network_namespace_gets_a_context_of_its_own(lib):
    """A netlink socket speaks to the namespace it was opened in: a context opened in the host's
    must not carry a container namespace's rules, nor the other way round."""
    import threading

    from envtool.runtime.syscalls import CLONE_NEWNET, LinuxSyscalls

    nft._nft("-f", "-", stdin="frobnicate\n", check=False)
    host = _key()
    seen: dict[str, object] = {}

    def elsewhere() -> None:                            # unshare moves this thread only
        LinuxSyscalls().unshare(CLONE_NEWNET)
        seen["proc"] = nft._nft("-f", "-", stdin="wibble\n", check=False)
        seen["key"] = _key()

    t = threading.Thread(target=elsewhere)
    t.start()
    t.join()
    assert seen["key"] != host and set(lib.contexts) == {host, seen["key"]}
    assert "wibble" in seen["proc"].stderr
    lib.lib.nft_ctx_free(lib.contexts.pop(seen["key"]))          # its namespace goes with its socket
