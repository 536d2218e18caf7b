"""The one wait for fds: poll(), so fds past FD_SETSIZE (1024) work."""

import os
import resource
import time

from envtool._util.wait import readable


def test_readable_reports_data_and_eof_and_times_out():
    r, w = os.pipe()
    try:
        t0 = time.monotonic()
        assert readable([r], 0.05) == [] and time.monotonic() - t0 >= 0.04
        os.write(w, b"x")
        assert readable([r], 1) == [r]
        os.read(r, 1)
        os.close(w)
        w = -1
        assert readable([r], 1) == [r]                    # EOF counts: the reader sees it at once
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_an_fd_past_fd_setsize_works():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 1200:
        import pytest

        pytest.skip("the fd limit is below 1200")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    r, w = os.pipe()
    high = os.dup2(r, 1100)
    try:
        os.write(w, b"x")
        assert readable([high], 1) == [high]
    finally:
        for fd in (r, w, high):
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
