from envtool.spec.interpolate import read_dotenv

BASE = '[images.py]\nfrom = "debian:bookworm"\n[services.web]\nimage = "py"\n'


def test_interpolation_forms(project):
    p = project(BASE + 'environment = { A = "${X}", B = "${Y:-dflt}", C = "$$literal", D = "${Z-}" }\n',
                environ={"X": "x"})
    assert p.project.services["web"].environment == {"A": "x", "B": "dflt", "C": "$literal", "D": ""}


def test_required_variable(load_error):
    e = load_error(BASE + 'environment = { A = "${NEED:?set it}" }\n')
    assert e.key == "services.web.environment.A"
    assert "NEED" in e.message and "set it" in e.message


def test_unset_variable_warns(project):
    p = project(BASE + 'environment = { A = "${NOPE}" }\n')
    assert any("NOPE" in w for w in p.warnings)


def test_dotenv_file(project, tmp_path):
    (tmp_path / ".env").write_text('# c\nexport TAG="v1"\nPORT=8000 # comment\n')
    p = project(BASE + 'environment = { T = "${TAG}", P = "${PORT}" }\n')
    assert p.project.services["web"].environment == {"T": "v1", "P": "8000"}


def test_read_dotenv_quotes():
    assert read_dotenv("A='x y'\nB=\"1\\n2\"\nbad line\n") == {"A": "x y", "B": "1\n2"}


OVERLAY = BASE + """replicas = 1
environment = { A = "1", B = "2" }
[environments.prod.services.web]
replicas = 3
environment = { B = "3" }
"""


def test_overlay_deep_merges(project):
    p = project(OVERLAY, env="prod")
    web = p.project.services["web"]
    assert web.replicas == 3
    assert web.environment == {"A": "1", "B": "3"}


def test_overlay_may_not_change_image(load_error):
    e = load_error(OVERLAY + 'image = "other"\n')
    assert e.key == "environments.prod.services.web.image"
    assert e.location.line == 10
    assert "locked images" in e.hint


def test_overlay_unknown_service(load_error):
    e = load_error(OVERLAY + '[environments.prod.services.wbe]\nreplicas = 2\n')
    assert e.key == "environments.prod.services.wbe"


def test_overlay_bad_value_points_into_overlay(load_error):
    e = load_error(OVERLAY.replace("replicas = 3", 'replicas = "many"'))
    assert e.key == "environments.prod.services.web.replicas"
    assert e.location.line == 8


def test_unknown_environment(load_error):
    e = load_error(OVERLAY, env="prdo")
    assert e.hint == 'did you mean "prod"?'
