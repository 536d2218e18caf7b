"""The library facade: what the CLI calls, and what tests and other programs may call.

Every function takes plain arguments and returns plain data; nothing here prints.  One module per
part of the product:

    project     load, validate, config, diff, init, schema; the project's name
    images      lock, build, images, save, push, pull, gc; the image a command names
    containers  run (one-off containers) and the host checks every container needs
    stack       up, down, ps, logs, exec, stop/start/restart, scale: the supervisor's clients
    releases    bundle, up --bundle's release, promote, releases, export, import
    devloop     the watcher's hooks into a running stack, and the detached watcher
"""

from envtool.api.containers import run
from envtool.api.devloop import StackHooks, start_watch_daemon, stop_watch_daemon, watcher
from envtool.api.images import build, gc, list_images, lock, pull, push, resolve_image, save, stored_image
from envtool.api.project import (
    Context,
    config,
    configure,
    context,
    diff,
    init,
    load_project,
    open_store,
    project_name,
    reset,
    schema_text,
    validate,
)
from envtool.api.releases import (
    bundle,
    deploy,
    export_compose,
    export_kubernetes,
    image_digests,
    import_compose,
    promote,
    releases,
    remote_have,
    remote_receive,
)
from envtool.api.stack import (
    control_services,
    desired_stack,
    down,
    early_exits,
    exec_spec,
    log_files,
    plan,
    ps,
    rollback,
    service_images,
    up,
    up_bundle,
    watch_log,
)
from envtool.runtime.host import check_host

__all__ = [
    "Context", "configure", "context", "reset",
    "StackHooks", "build", "bundle", "check_host", "config", "control_services", "deploy", "desired_stack", "diff",
    "down", "early_exits", "exec_spec", "export_compose", "export_kubernetes", "gc", "image_digests", "import_compose", "init",
    "list_images", "load_project", "lock", "log_files", "open_store", "plan", "project_name", "promote", "ps",
    "pull", "push", "releases", "remote_have", "remote_receive", "resolve_image", "rollback", "run", "save", "schema_text", "service_images", "start_watch_daemon",
    "stop_watch_daemon", "stored_image", "up", "up_bundle", "validate", "watch_log", "watcher",
]
