"""Per-key behaviour: short syntax → canonical model, and a round trip through tomli-w."""

import tomli_w

from envtool.spec.model import Condition, Project, RestartPolicy

BASE = '[images.py]\nfrom = "debian:bookworm"\n[services.web]\nimage = "py"\n'


def test_ports_short_and_long(project):
    p = project(BASE + 'ports = ["8080:80", "127.0.0.1:9000:90/udp", "3000", {target = 22, published = 2222}]\n')
    ports = p.project.services["web"].ports
    assert [(x.host_ip, x.published, x.target, x.protocol.value) for x in ports] == [
        (None, 8080, 80, "tcp"), ("127.0.0.1", 9000, 90, "udp"), (None, None, 3000, "tcp"),
        (None, 2222, 22, "tcp")]


def test_volumes_short(project, tmp_path):
    (tmp_path / "static").mkdir()
    p = project(BASE + 'volumes = ["data:/var/lib/x", "./static:/app/static:ro"]\n[volumes.data]\n')
    v = p.project.services["web"].volumes
    assert (v[0].type, v[0].source, v[0].read_only) == ("volume", "data", False)
    assert (v[1].type, v[1].source, v[1].read_only) == ("bind", "./static", True)


def test_environment_list_and_table(project):
    p = project(BASE + 'environment = ["A=1", "B"]\n', environ={"B": "from-host"})
    assert p.project.services["web"].environment == {"A": "1"}
    p = project(BASE + 'environment = { A = 1, B = true }\n')
    assert p.project.services["web"].environment == {"A": "1", "B": "true"}


def test_depends_on_and_enums(project):
    p = project(BASE + 'depends_on = { db = "healthy" }\nrestart = "on-failure"\n'
                '[services.db]\nimage = "py"\nhealthcheck = { command = ["true"] }\n')
    web = p.project.services["web"]
    assert web.depends_on == {"db": Condition.healthy}
    assert web.restart is RestartPolicy.on_failure


def test_healthcheck_durations(project):
    p = project(BASE + 'healthcheck = { command = "redis-cli ping", interval = "1s", timeout = "500ms" }\n')
    hc = p.project.services["web"].healthcheck
    assert hc.command == ["/bin/sh", "-c", "redis-cli ping"]
    assert (hc.interval, hc.timeout, hc.retries) == (1.0, 0.5, 3)


def test_resources(project):
    p = project(BASE + 'resources = { memory = "256M", cpus = 0.5, pids = 64 }\n')
    r = p.project.services["web"].resources
    assert (r.memory, r.cpus, r.pids) == (256 << 20, 0.5, 64)


def test_project_name_defaults_to_directory(project, tmp_path):
    p = project(BASE)
    assert p.name == tmp_path.name.lower().replace("_", "_")


def test_round_trip_through_toml(project, tmp_path):
    (tmp_path / "app").mkdir()
    text = (BASE + 'ports = ["8080:80"]\nhealthcheck = { command = ["true"], interval = "2s" }\n'
            'resources = { memory = "64M" }\nvolumes = ["data:/d"]\n[volumes.data]\n'
            '[images.py2]\nfrom = "image:py"\ncopy = [{ src = "app", dst = "/app" }]\n')
    first = project(text).project
    dumped = tomli_w.dumps(first.model_dump(mode="json", by_alias=True, exclude_none=True))
    second = project(dumped).project
    assert second == first
    assert Project.model_validate(first.model_dump(by_alias=True)) == first
