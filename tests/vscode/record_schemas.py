"""Re-record tests/vscode/recorded/: the schemas a running VS Code (code-server) checks
tasks.json and launch.json against, written out by the schema-dump extension."""

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import tools  # noqa: E402


def main() -> None:
    import os
    import socket

    with tempfile.TemporaryDirectory() as home:
        out, folder = Path(home) / "out", Path(home) / "folder"
        out.mkdir()
        folder.mkdir()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = {**os.environ, "DEVKIT_SCHEMA_OUT": str(out)}
        extensions = (HERE / "schema-dump", HERE / "debugpy-manifest")
        with tools.running_code_server(Path(home), port, env, extensions) as url:
            tools.drive(url, folder, [{"sleep": 5}])
        for name in ("tasks.schema.json", "launch.schema.json", "version.txt"):
            (HERE / "recorded" / name).write_bytes((out / name).read_bytes())
            print(f"recorded {name}")


if __name__ == "__main__":
    main()
