"""One-off containers (`envtool run`) and the host checks every container needs."""

from __future__ import annotations

from typing import Any

from envtool.api.project import open_store
from envtool.runtime.host import check_host


def run(image_ref: Any, opts: Any, file: str | None = None, directory: str | None = None,
        rm: bool = True, reporter: Any = None, name: str | None = None) -> Any:
    """Run a one-off container attached to the terminal; returns (ExitInfo, message or None).
    image_ref: what resolve_image takes, or an Image from the store."""
    import os

    from envtool.runtime import launcher
    from envtool.stack.convert import run_config

    check_host()
    from envtool.api.images import resolve_image

    image = resolve_image(image_ref, file, directory, reporter) if isinstance(image_ref, str) else image_ref
    store = open_store()
    dirs = store.unpack(image)
    cname = name or f"run-{os.urandom(6).hex()}"
    init_path = launcher.find_init() if opts.init else None
    cfg = run_config(cname, image, dirs, opts, store, init_path)
    c = launcher.start(cfg, seccomp_cache=str(store.cache_dir / "seccomp"))
    try:
        info = launcher.run_attached(c)
    finally:
        if c.exit is None:
            launcher.stop(c, grace=0)
        launcher.cleanup(c, remove_state=rm)
    return info, launcher.describe_exit(info, cname, cfg.limits.memory)
