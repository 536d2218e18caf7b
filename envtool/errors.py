"""The envtool error tree.

    EnvtoolError                      code, message, hint, location, exit_code
    ├── InputError (exit 2)           the user's input is wrong; fix it and retry
    │   ├── SpecError                 envtool.toml: syntax, schema, checks (with file:line:col)
    │   ├── UsageError                a CLI argument that typer could not check
    │   └── ImageNotFound             a named image is neither a recipe nor in the store
    └── RuntimeFailure (exit 1)       the machine refused or something broke underway
        ├── HostError                 the host lacks something: root, overlayfs, mmdebstrap, tini
        ├── SyscallError              a libc call failed (operation, object, errno)
        ├── ContainerError            a container could not be started (step, cause)
        │   ├── CommandNotFound       exit 127
        │   └── CommandNotExecutable  exit 126
        ├── BuildError                an image build step failed
        └── StoreError                the image store is damaged or a blob does not match its digest

Messages are lowercase, operation first, then the object, then the cause.  `cli/app.py` is the one
place that catches these, prints them and picks the exit code.
"""

from __future__ import annotations

import os
from typing import ClassVar

from envtool._util.record import dataclass


@dataclass(frozen=True)
class Location:
    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        out = self.file
        if self.line is not None:
            out += f":{self.line}"
            if self.column is not None:
                out += f":{self.column}"
        return out


class EnvtoolError(Exception):
    code: ClassVar[str] = "envtool-error"
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, *, hint: str | None = None, location: Location | None = None,
                 key: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.location = location
        self.key = key
        self.related: list[EnvtoolError] = []

    def __str__(self) -> str:
        prefix = f"{self.location}: " if self.location else ""
        key = f"{self.key}: " if self.key else ""
        return f"{prefix}{key}{self.message}"

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "hint": self.hint,
                "location": str(self.location) if self.location else None, "key": self.key,
                "exit_code": self.exit_code}


class InputError(EnvtoolError):
    code = "input-invalid"
    exit_code = 2


class SpecError(InputError):
    code = "spec-invalid"


class UsageError(InputError):
    code = "usage"


class ImageNotFound(InputError):
    code = "image-not-found"


class RuntimeFailure(EnvtoolError):
    code = "runtime-failure"
    exit_code = 1


class HostError(RuntimeFailure):
    code = "host-unsupported"


class ContainerError(RuntimeFailure):
    code = "container-failed"


class CommandNotFound(ContainerError):
    """The container's command does not exist (exit 127, like a shell and Docker)."""
    code = "command-not-found"
    exit_code = 127


class CommandNotExecutable(ContainerError):
    code = "command-not-executable"
    exit_code = 126


class BuildError(RuntimeFailure):
    code = "build-failed"


class StoreError(RuntimeFailure):
    code = "store-corrupt"


class SyscallError(RuntimeFailure):
    """A libc call failed: `mount overlay on /x (flags=MS_NODEV): operation not permitted`."""

    code = "syscall-failed"

    def __init__(self, op: str, target: str = "", err: int = 0, detail: str = "",
                 hint: str | None = None) -> None:
        self.op, self.target, self.errno, self.detail = op, target, err, detail
        parts = [op]
        if target:
            parts.append(target)
        text = " ".join(parts)
        if detail:
            text += f" ({detail})"
        reason = os.strerror(err).lower() if err else "failed"
        super().__init__(f"{text}: {reason}", hint=hint)
