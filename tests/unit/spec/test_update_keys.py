"""[services.X.update]: the order rule and bad values located."""


def test_update_order_defaults_to_start_first_and_stop_first_for_a_written_volume(project):
    base = '[images.py]\nfrom = "debian:bookworm"\n[services.web]\nimage = "py"\n'
    assert project(base).project.services["web"].update_order() == ("start-first", "")
    db = project(base + 'volumes = ["data:/var/lib/db"]\n[volumes.data]\n').project.services["web"]
    assert db.update_order() == ("stop-first", "it writes volume 'data' (set update.order to choose)")
    ro = project(base + 'volumes = ["data:/srv:ro"]\n[volumes.data]\n').project.services["web"]
    assert ro.update_order()[0] == "start-first"
    chosen = project(base + 'volumes = ["data:/var/lib/db"]\nupdate = { order = "start-first" }\n'
                            '[volumes.data]\n').project.services["web"]
    assert chosen.update_order() == ("start-first", "")


def test_update_keys_are_validated_with_their_line(load_error):
    base = '[images.py]\nfrom = "debian:bookworm"\n[services.web]\nimage = "py"\n[services.web.update]\n'
    e = load_error(base + 'order = "start_first"\n')
    assert e.key == "services.web.update.order" and e.location.line == 6
    assert "start-first" in e.message
    e = load_error(base + 'parallelism = 0\n')
    assert e.key == "services.web.update.parallelism" and e.location.line == 6
    e = load_error(base + 'monitor = "soon"\n')
    assert e.key == "services.web.update.monitor"
    e = load_error(base + 'failure_action = "continue"\n')
    assert e.key == "services.web.update.failure_action" and "rollback" in e.message
    e = load_error(base + 'max_surge = 2\n')
    assert e.key == "services.web.update.max_surge" and e.message == "unknown key"
