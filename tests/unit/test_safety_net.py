"""The older undo points are pruned after the change succeeded, and a prune that fails does not
undo the change's success (devkit/safety_net.py)."""

import pytest

from devkit.safety_net import SafetyNet

pytestmark = pytest.mark.unit


class Unreachable:
    """A stack whose database cannot be reached: every attribute read fails, as a lost
    connection does half-way through a prune."""

    def __getattr__(self, name):
        raise ConnectionError("server closed the connection unexpectedly")


def test_a_prune_that_fails_is_said_and_raises_nothing():
    said: list[str] = []
    net = SafetyNet(snapshot="before-restore-20261206-120000", stack=Unreachable(), keep=2)
    net.prune_older(said.append)  # raised ConnectionError, and kept_around then dropped the net
    assert len(said) == 1 and said[0].startswith("warning:"), said
    assert "server closed the connection unexpectedly" in said[0]
    assert "newest 2" in said[0]


def test_a_backup_file_or_no_snapshot_prunes_nothing():
    said: list[str] = []
    SafetyNet(stack=Unreachable(), keep=2).prune_older(said.append)
    assert said == []
