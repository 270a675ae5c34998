import os
import socket
from pathlib import Path

import pytest

from devkit.ports import listening_inodes, port_free, port_holder

pytestmark = pytest.mark.unit

TCP_HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"


def fake_proc(tmp_path, rows):
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp").write_text(TCP_HEADER + "".join(rows))
    return tmp_path


def test_listening_inodes_reads_only_listeners_on_the_port(tmp_path):
    proc = fake_proc(
        tmp_path,
        [
            "   0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1\n",
            "   1: 0100007F:1538 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 222 1\n",
            "   2: 00000000:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 333 1\n",
        ],
    )
    assert listening_inodes(5432, proc) == {"111"}
    assert listening_inodes(6379, proc) == {"333"}
    assert listening_inodes(1234, proc) == set()


def test_a_real_listener_is_seen_and_named():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not port_free("127.0.0.1", port)
        holder = port_holder(port)
        own_name = Path("/proc/self/comm").read_text().strip()
        assert holder is not None and holder == (os.getpid(), own_name)
    assert port_free("127.0.0.1", port)
