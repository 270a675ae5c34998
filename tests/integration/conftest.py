import socket

import pytest


@pytest.fixture
def held_port():
    """A port on 127.0.0.1 held by a listener of this (python) process."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]
