"""Files out of an image's layers: `copy = [{ from = "builder", src, dst }]` into a new layer, and
the content a new volume starts with (what the image has at the volume's mount point).

The layers are mounted read-only (overlayfs, nodev, nosuid) in a mount namespace of a helper process
of its own (`unshare --mount`), so nothing is left mounted on the host whatever happens; `src` is
resolved inside that root with RESOLVE_IN_ROOT, so a symlink in the other image (`/out -> /etc`)
resolves to the image's /etc, never the build host's.  The helper writes the layer tar, or copies
into the volume directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from envtool.errors import BuildError
from envtool.image.layer import LayerWriter, Owner, add_copy


def copy_from_layers(dirs: list[str], src: str, dst: str, owner: Owner, mode: int | None, epoch: int,
                     out: str, what: str) -> None:
    """Write a layer tar to `out` holding `src` of the image whose unpacked layers are `dirs`
    (bottom first), placed at `dst` as a copy step places files."""
    if not dirs:
        raise BuildError(f"{what}: that image has no layers (scratch)")
    job = {"dirs": dirs, "src": src, "dst": dst, "uid": owner.uid, "gid": owner.gid, "mode": mode,
           "epoch": epoch, "out": out}
    with tempfile.TemporaryDirectory(prefix="envtool-stage-") as mnt:
        job["mnt"] = mnt
        proc = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, "-m",
                               "envtool.image.stage_copy"], input=json.dumps(job), capture_output=True,
                              text=True, check=False)
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["the copy helper failed"])[-1]
        raise BuildError(f"{what}: {reason}", hint="check the path exists in that image (envtool run IMAGE ls PATH)")


def populate_volume(dirs: list[str], path: str, dest: str) -> None:
    """Fill the new, empty volume directory `dest` with what the image (its unpacked layers) has at
    `path`: contents, and the directory's own owner and mode.  Nothing when the image has nothing
    there (or not a directory)."""
    if not dirs:
        return
    job = {"populate": True, "dirs": dirs, "src": path, "dest": dest}
    with tempfile.TemporaryDirectory(prefix="envtool-stage-") as mnt:
        job["mnt"] = mnt
        proc = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, "-m",
                               "envtool.image.stage_copy"], input=json.dumps(job), capture_output=True,
                              text=True, check=False)
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["the copy helper failed"])[-1]
        raise BuildError(f"cannot fill the new volume for {path} from the image: {reason}")


def _helper(job: dict) -> None:
    from envtool.errors import SyscallError
    from envtool.runtime.syscalls import (
        MS_NODEV,
        MS_NOSUID,
        MS_RDONLY,
        O_PATH,
        RESOLVE_IN_ROOT,
        RESOLVE_NO_MAGICLINKS,
        LinuxSyscalls,
    )

    real = LinuxSyscalls()

    dirs, mnt = job["dirs"], job["mnt"]
    if len(dirs) == 1:
        root = dirs[0]
    else:      # overlayfs without an upper dir is read-only; it lists the topmost layer first
        real.mount("overlay", mnt, "overlay", MS_RDONLY | MS_NODEV | MS_NOSUID,
                   "lowerdir=" + ":".join(reversed(dirs)))
        root = mnt
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = real.openat2(root_fd, job["src"].strip("/") or ".", O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
    except SyscallError as e:
        if job.get("populate"):
            return                                      # nothing there in the image: an empty volume
        raise SystemExit(f"{job['src']!r} is not in that image ({os.strerror(e.errno or 0)})") from None
    path = os.readlink(f"/proc/self/fd/{fd}")           # resolved inside the root: no symlink left
    if path != root and not path.startswith(root.rstrip("/") + "/"):
        raise SystemExit(f"{job['src']!r} resolves outside that image")
    if job.get("populate"):
        if os.path.isdir(path):       # cp -a: symlinks stay symlinks; the volume is mounted nodev,nosuid
            subprocess.run(["cp", "-a", "--", path + "/.", job["dest"]], check=True)
        return
    w = LayerWriter(job["epoch"])
    add_copy(w, path, job["dst"], Owner(job["uid"], job["gid"]), job["mode"], [],
             name=os.path.basename(job["src"].rstrip("/")) or None)
    with open(job["out"], "wb") as f:
        w.write(f)


if __name__ == "__main__":
    from envtool.errors import EnvtoolError

    try:
        _helper(json.load(sys.stdin))
    except EnvtoolError as e:
        raise SystemExit(e.message) from None
    except OSError as e:
        raise SystemExit(f"{e.strerror}: {e.filename}" if e.filename else str(e)) from None
