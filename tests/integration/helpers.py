"""Helpers shared by integration tests."""

import os


def run_in_pty(argv: list[str], env: dict[str, str]) -> tuple[int, bytes]:
    """Run argv with a pseudo-terminal as its stdio; returns (exit code, everything it printed)."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(argv[0], argv, env)
    out = b""
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out
