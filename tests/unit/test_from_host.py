"""Another server's backups from a server (`db.restore-s3 NAME --from-host HOST`): the S3
prefix of this server's own inventory (`backups/{{ inventory_hostname }}/`, as inventories/ci
and the staging example have it) with the other host's name."""

import pytest

import devkit.paths
from devkit.destinations import destination_of
from devkit.errors import SettingsError

pytestmark = pytest.mark.unit


@pytest.fixture
def on_server(tmp_path, monkeypatch):
    mark = tmp_path / ".devkit-server"
    mark.write_text("devkit-ci-1\n")
    monkeypatch.setattr(devkit.paths, "SERVER_MARK", mark)


def test_the_prefix_names_the_other_host(on_server):
    config = {"s3_bucket": "backups-bucket", "s3_prefix": "backups/devkit-ci-1/"}
    assert destination_of(config, "devkit-ci-2").prefix == "backups/devkit-ci-2/"
    assert destination_of(config).prefix == "backups/devkit-ci-1/"


def test_a_prefix_without_the_hosts_name_is_refused_with_the_fix(on_server):
    with pytest.raises(SettingsError) as refused:
        destination_of({"s3_bucket": "backups-bucket", "s3_prefix": "backups/"}, "devkit-ci-2")
    assert "does not name its own server (devkit-ci-1)" in refused.value.cause
    assert "INVOKE_DEVKIT_S3_PREFIX" in refused.value.hint
