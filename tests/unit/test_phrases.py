"""The suite's way of reading messages (tests/phrases.py) fails when a fact is missing."""

import pytest

from phrases import line_with, says

pytestmark = pytest.mark.unit

SAID = "error: port 5432 on 127.0.0.1 (for postgres) is taken by nginx\nfix: set the port\n"


def test_line_with_returns_the_line_holding_every_fact():
    assert line_with(SAID, "port 5432 ", "postgres", "nginx").startswith("error:")


def test_line_with_fails_when_the_facts_are_on_different_lines():
    with pytest.raises(AssertionError, match="no line holds"):
        line_with(SAID, "nginx", "fix:")


def test_says_reads_a_wrapped_message_as_one_and_names_what_is_missing():
    wrapped = "the volume already holds the database of the app in\n  /home/u/app, not of /tmp/x"
    assert says(wrapped, "app in /home/u/app, not of /tmp/x")
    with pytest.raises(AssertionError, match="'/tmp/y'"):
        says(wrapped, "/tmp/y")
