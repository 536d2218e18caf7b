BASE = '[images.py]\nfrom = "debian:bookworm"\n[services.web]\nimage = "py"\n'


def test_bind_mount_escaping_project(load_error):
    e = load_error(BASE + 'volumes = ["../outside:/x"]\n')
    assert "escapes the project" in e.message
    assert e.key == "services.web.volumes[0]"


def test_bind_mount_absolute_outside(load_error):
    e = load_error(BASE + 'volumes = ["/etc:/x:ro"]\n')
    assert "escapes the project" in e.message


def test_bind_mount_through_a_symlink_that_leaves_the_project(load_error, tmp_path):
    (tmp_path / "static").symlink_to("/etc")                # a hostile checkout: static -> /etc
    e = load_error(BASE + 'volumes = ["./static:/x:ro"]\n')
    assert "escapes the project" in e.message


def test_undeclared_named_volume(load_error):
    e = load_error(BASE + 'volumes = ["data:/x"]\n')
    assert e.hint == "add [volumes.data]"


def test_port_clash(load_error):
    e = load_error(BASE + 'ports = ["8080:80"]\n[services.api]\nimage = "py"\nports = ["8080:81"]\n')
    assert "also published by 'web'" in e.message


def test_replicas_share_a_published_port(project):
    loaded = project(BASE + 'ports = ["8080:80"]\nreplicas = 2\n')
    assert loaded.project.services["web"].replicas == 2


def test_dependency_cycle(load_error):
    e = load_error(BASE + 'depends_on = ["api"]\n[services.api]\nimage = "py"\ndepends_on = ["web"]\n')
    assert "cycle" in e.message


def test_unknown_dependency_hint(load_error):
    e = load_error(BASE + 'depends_on = ["wbe"]\n')
    assert e.hint == 'did you mean "web"?'


def test_unknown_capability(load_error):
    e = load_error(BASE + 'cap_add = ["NET_ADMN"]\n')
    assert e.hint == 'did you mean "CAP_NET_ADMIN"?'


def test_environment_checks_run_per_overlay(project):
    import pytest

    from envtool.errors import SpecError

    text = BASE + 'ports = ["8080:80"]\n[services.api]\nimage = "py"\n' \
        '[environments.prod.services.api]\nports = ["8080:81"]\n'
    project(text)  # the base is fine
    with pytest.raises(SpecError, match="also published by 'web'"):
        project(text, env="prod")


def test_copy_source_must_exist(load_error):
    e = load_error(BASE + '[images.app]\nfrom = "image:py"\ncopy = [{ src = "nope", dst = "/x" }]\n')
    assert e.key == "images.app.copy[0].src"


def test_watch_rule_checks(load_error, tmp_path):
    (tmp_path / "app").mkdir()
    e = load_error(BASE + '[services.web.develop]\nwatch = [{ path = "app", action = "sync" }]\n')
    assert "needs an absolute target" in e.message


def test_healthy_condition_needs_a_healthcheck(load_error):
    e = load_error(BASE + 'depends_on = { db = "healthy" }\n[services.db]\nimage = "py"\n')
    assert e.key == "services.web.depends_on.db"
    assert "has no healthcheck" in e.message


def test_mirror_must_be_a_single_url(load_error):
    """Hole 3: a newline in `mirror` added `Trusted: yes` and a repository to apt's sources."""
    e = load_error('[images.a]\nfrom = "debian:bookworm"\nmirror = "http://deb.example.invalid/debian\\nTrusted: yes"\n')
    assert "envtool.toml:3" in str(e) and "single URL" in str(e)
    e = load_error('[images.a]\nfrom = "debian:bookworm"\nmirror = "ftp://deb.example.invalid/debian"\n')
    assert "http://, https:// or file://" in str(e)


def test_copy_dst_with_dotdot_is_refused(load_error):
    e = load_error('[images.a]\nfrom = "debian:bookworm"\ncopy = [{ src = "x", dst = "/app/../../etc" }]\n')
    assert "envtool.toml:3" in str(e) and "'..'" in str(e)


def test_powerful_capabilities_are_accepted_with_a_warning_naming_the_service(project):
    loaded = project('[services.web]\nimage = "debian:bookworm"\ncap_add = ["NET_BIND_SERVICE", "SYS_ADMIN"]\n'
                     '[services.tool]\nimage = "debian:bookworm"\ncap_add = ["ALL"]\n')
    assert len(loaded.warnings) == 2
    assert "envtool.toml:3" in loaded.warnings[0] and "'web'" in loaded.warnings[0]
    assert "CAP_SYS_ADMIN" in loaded.warnings[0]
    assert "'tool'" in loaded.warnings[1] and "every capability" in loaded.warnings[1]


def test_validate_refuses_packages_on_a_base_that_is_not_debian(load_error):
    """What `up` would refuse, `validate` refuses first, at the key."""
    e = load_error('[images.x]\nfrom = "localhost:5000/team/base:1"\npackages = ["curl"]\n')
    assert "packages need a debian:<suite> base" in e.message and e.key == "images.x.packages"
