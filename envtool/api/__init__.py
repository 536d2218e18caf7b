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

# Names are imported on first use (PEP 562): `envtool run` needs `run` alone, and importing every
# room of the facade (releases, tar files, the devloop) cost ~5 ms of a one-off container's start.
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from envtool.api.containers import run
    from envtool.api.devloop import StackHooks, start_watch_daemon, stop_watch_daemon, watcher
    from envtool.api.images import (
        build,
        gc,
        list_images,
        lock,
        pull,
        push,
        recent_image,
        resolve_image,
        save,
        stored_image,
    )
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
        abandon_early_supervisor,
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
        start_supervisor_early,
        up,
        up_bundle,
        watch_log,
    )
    from envtool.runtime.host import check_host

_WHERE = {
    'Context': 'envtool.api.project',
    'StackHooks': 'envtool.api.devloop',
    'build': 'envtool.api.images',
    'bundle': 'envtool.api.releases',
    'abandon_early_supervisor': 'envtool.api.stack',
    'check_host': 'envtool.runtime.host',
    'config': 'envtool.api.project',
    'configure': 'envtool.api.project',
    'context': 'envtool.api.project',
    'control_services': 'envtool.api.stack',
    'deploy': 'envtool.api.releases',
    'desired_stack': 'envtool.api.stack',
    'diff': 'envtool.api.project',
    'down': 'envtool.api.stack',
    'early_exits': 'envtool.api.stack',
    'exec_spec': 'envtool.api.stack',
    'export_compose': 'envtool.api.releases',
    'export_kubernetes': 'envtool.api.releases',
    'gc': 'envtool.api.images',
    'image_digests': 'envtool.api.releases',
    'import_compose': 'envtool.api.releases',
    'init': 'envtool.api.project',
    'list_images': 'envtool.api.images',
    'load_project': 'envtool.api.project',
    'lock': 'envtool.api.images',
    'log_files': 'envtool.api.stack',
    'open_store': 'envtool.api.project',
    'plan': 'envtool.api.stack',
    'project_name': 'envtool.api.project',
    'promote': 'envtool.api.releases',
    'ps': 'envtool.api.stack',
    'pull': 'envtool.api.images',
    'push': 'envtool.api.images',
    'releases': 'envtool.api.releases',
    'remote_have': 'envtool.api.releases',
    'remote_receive': 'envtool.api.releases',
    'reset': 'envtool.api.project',
    'resolve_image': 'envtool.api.images',
    'rollback': 'envtool.api.stack',
    'run': 'envtool.api.containers',
    'save': 'envtool.api.images',
    'schema_text': 'envtool.api.project',
    'service_images': 'envtool.api.stack',
    'start_supervisor_early': 'envtool.api.stack',
    'start_watch_daemon': 'envtool.api.devloop',
    'stop_watch_daemon': 'envtool.api.devloop',
    'stored_image': 'envtool.api.images',
    'recent_image': 'envtool.api.images',
    'up': 'envtool.api.stack',
    'up_bundle': 'envtool.api.stack',
    'validate': 'envtool.api.project',
    'watch_log': 'envtool.api.stack',
    'watcher': 'envtool.api.devloop',
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'envtool.api' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "Context", "configure", "context", "reset",
    "StackHooks", "abandon_early_supervisor", "build", "bundle", "check_host", "config", "control_services", "deploy", "desired_stack", "diff",
    "down", "early_exits", "exec_spec", "export_compose", "export_kubernetes", "gc", "image_digests", "import_compose", "init",
    "list_images", "load_project", "lock", "log_files", "open_store", "plan", "project_name", "promote", "ps",
    "pull", "push", "recent_image", "releases", "remote_have", "remote_receive", "resolve_image", "rollback", "run", "save", "schema_text", "service_images", "start_supervisor_early", "start_watch_daemon",
    "stop_watch_daemon", "stored_image", "up", "up_bundle", "validate", "watch_log", "watcher",
]
