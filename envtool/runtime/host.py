"""What the host must offer before any container can start: root, overlayfs."""

from __future__ import annotations

import os


def check_host(need_overlay: bool = True) -> None:
    from envtool.errors import HostError

    if os.geteuid() != 0:
        raise HostError("envtool needs root to create namespaces, mounts and cgroups",
                        hint="run it as root (sudo envtool ...)")
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
