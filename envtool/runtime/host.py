"""What the host must offer before any container can start: root (or a rootless session), overlayfs."""

from __future__ import annotations

import os


def check_host(need_overlay: bool = True) -> None:
    from envtool.errors import HostError

    if os.geteuid() != 0:
        from envtool.runtime import rootless

        rootless.enter()            # an ordinary user: join (or start) the user's rootless session
    if need_overlay:
        try:
            with open("/proc/filesystems") as f:
                has_overlay = "overlay" in f.read()
        except OSError:
            has_overlay = False
        if not has_overlay:
            import subprocess

            subprocess.run(["modprobe", "overlay"], capture_output=True, check=False)
            with open("/proc/filesystems") as f:
                if "overlay" not in f.read():
                    raise HostError("overlayfs is not available in this kernel",
                                    hint="load it with `modprobe overlay` (package kmod)")
