"""A container that runs otherwise than compose.yaml says (devkit/compose.py's runs_otherwise):
the one rule `devkit verify` checks and the stack role repairs by, here on the kit's own
compose.yaml, and the role's filter over docker_container_info's results (the shape its
`container` has: the engine's inspect, HostConfig.RestartPolicy and Config.StopTimeout)."""

import importlib.util

import pytest
import yaml

from devkit.compose import runs_otherwise, whole_seconds
from devkit.paths import KIT_ROOT

pytestmark = pytest.mark.unit

SERVICES = yaml.safe_load((KIT_ROOT / "compose" / "compose.yaml").read_text())["services"]


def test_the_kits_services_run_as_compose_yaml_says_or_are_named():
    for definition in SERVICES.values():  # the anchors merged: unless-stopped, 30s
        assert runs_otherwise(definition, "unless-stopped", 30) == ""
        assert runs_otherwise(definition, "unless-stopped", "30") == ""
        said = runs_otherwise(definition, "no", 30)
        assert said == (
            "runs with restart policy and stop timeout 'no 30', compose.yaml says "
            "unless-stopped and 30s"
        )
        assert "'unless-stopped 10'" in runs_otherwise(definition, "unless-stopped", 10)


def test_the_roles_filter_names_the_services_to_make_anew():
    spec = importlib.util.spec_from_file_location(
        "stack_env", KIT_ROOT / "roles" / "stack" / "filter_plugins" / "stack_env.py"
    )
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    drifted = plugin.FilterModule().filters()["runs_otherwise"]

    def result(service, policy, timeout=30):
        container = {"HostConfig": {"RestartPolicy": {"Name": policy}},
                     "Config": {"StopTimeout": timeout}}  # fmt: skip
        return {"item": {"Service": service, "Name": f"p-{service}-1"}, "container": container}

    inspected = [result("postgres", "unless-stopped"), result("redis", "no")]
    assert drifted(inspected, SERVICES) == ["redis"]
    # A container gone since the listing (docker_container_info: exists false, container None),
    # a skipped loop (no results), a service compose.yaml does not define: nothing to make.
    gone = {"item": {"Service": "redis"}, "container": None, "exists": False}
    assert drifted([gone, result("other", "no")], SERVICES) == []
    assert drifted([], SERVICES) == [] and drifted(None, SERVICES) == []


def test_compose_durations_are_read_as_dockers_seconds_or_refused():
    assert [whole_seconds(d) for d in ("30s", "1m30s", "2m", "1h", "0s")] == [30, 90, 120, 3600, 0]
    assert runs_otherwise({"restart": "always", "stop_grace_period": "1m30s"}, "always", 90) == ""
    for bad in ("", "30", "1.5s", "500ms", "s"):
        with pytest.raises(ValueError, match="not a duration of whole seconds"):
            whole_seconds(bad)
