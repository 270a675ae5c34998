"""A fresh machine whose only way out is a company proxy that inspects TLS with a CA of its own
(mitmproxy, a real one): `scripts/devkit setup` completes through it, given the proxy and the
CA, and without them stops at its first download with one line naming the setting.

The machine is a container of the fleet's plain test host image (Debian 12 with python3, no
init system, able to run a Docker engine of its own) on a Docker network with no way out
(`--internal`): the one address it reaches outside is the proxy's, on that network's gateway.
It gets a copy of the kit's files, as a `git clone` would, and runs the Quick start's command.
"""

import io
import os
import subprocess
import sys
import tarfile
import time

import pytest

from devkit.paths import KIT_ROOT

sys.path.insert(0, str(KIT_ROOT / "tests" / "vscode"))
sys.path.insert(0, str(KIT_ROOT / "tests" / "fleet"))
import testhosts
import tools

pytestmark = [pytest.mark.docker, pytest.mark.machine(shared=True)]

MITMPROXY = "mitmproxy==11.0.2"
KIT = "/opt/devkit"


def docker(*args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=False, **kwargs)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])}: {done.stderr}")
    return done


def kit_archive() -> bytes:
    """The kit's files as a clone has them (tracked files, as they are in the working tree)."""
    names = subprocess.run(
        [
            "git",
            "-C",
            str(KIT_ROOT),
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ],
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name in filter(None, names):
            path = KIT_ROOT / name.decode()
            if path.exists():
                archive.add(path, arcname=name.decode(), recursive=False)
    return buffer.getvalue()


@pytest.fixture
def behind_proxy(tmp_path):
    """(the host's name, the proxy's URL, the CA file in the host, the proxy's log)."""
    if docker("image", "inspect", testhosts.image("plain"), check=False).returncode != 0:
        docker(
            "build", "-q", "-t", testhosts.image("plain"), "--target", "plain",
            "--build-arg", f"BASE={testhosts.BASE}", str(KIT_ROOT / "tests" / "fleet"),
        )  # fmt: skip
    tag = f"devkit-proxy-test-{os.getpid()}"
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\n")
    docker("network", "create", "--internal", tag)
    gateway = docker(
        "network", "inspect", tag, "--format", "{{range .IPAM.Config}}{{.Gateway}}{{end}}"
    ).stdout.strip()
    mitmdump = tools.tools_python("mitmproxy", MITMPROXY).with_name("mitmdump")
    port = free_port_here()
    confdir = tmp_path / "mitmproxy"
    log = (tmp_path / "proxy.log").open("w")
    proxy = subprocess.Popen(
        [
            str(mitmdump), "--listen-host", gateway, "--listen-port", str(port),
            "--set", f"confdir={confdir}",
            # Upstream as this machine reaches it (its own CAs included).
            "--set", "ssl_verify_upstream_trusted_ca=/etc/ssl/certs/ca-certificates.crt",
            "--set", "flow_detail=1",
        ],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (confdir / "mitmproxy-ca-cert.pem").exists():
            assert time.monotonic() < deadline and proxy.poll() is None, "mitmproxy did not start"
            time.sleep(0.5)
        docker(
            # No name server either: Docker's own on such a network lets every lookup wait for
            # minutes; a closed network's refuses at once.
            "run", "-d", "--name", tag, "--hostname", tag, "--network", tag,
            "-v", f"{resolv}:/etc/resolv.conf:ro", *testhosts.RUN,
            *testhosts.NESTED_DOCKER, "-v", f"{tag}:/var/lib/docker", testhosts.image("plain"),
        )  # fmt: skip
        subprocess.run(
            ["docker", "exec", "-i", tag, "sh", "-c", f"mkdir -p {KIT} /root/app && tar -x -C {KIT}"],
            input=kit_archive(), check=True, capture_output=True,
        )  # fmt: skip
        docker("cp", str(confdir / "mitmproxy-ca-cert.pem"), f"{tag}:/root/company-ca.pem")
        yield tag, f"http://{gateway}:{port}", "/root/company-ca.pem", tmp_path / "proxy.log"
    finally:
        proxy.terminate()
        proxy.wait(timeout=30)
        log.close()
        docker("rm", "-f", "-v", tag, check=False)
        docker("volume", "rm", "-f", tag, check=False)
        docker("network", "rm", tag, check=False)


def free_port_here() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def setup_in(host: str, env: dict[str, str], timeout: float = 2400):
    """The Quick start's command in the host, in its app's directory."""
    flags = [arg for name, value in env.items() for arg in ("-e", f"{name}={value}")]
    return subprocess.run(
        ["docker", "exec", *flags, "-w", "/root/app", host, "bash", f"{KIT}/scripts/devkit", "setup"],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def test_setup_goes_through_a_tls_inspecting_proxy_with_its_ca(behind_proxy):
    host, proxy, ca_file, proxy_log = behind_proxy

    # No proxy set: the first download fails, and the line names the setting to set.
    bare = setup_in(host, {})
    assert bare.returncode != 0, bare.stdout + bare.stderr
    lines = [line for line in bare.stderr.splitlines() if line.startswith(("error:", "  fix:"))]
    assert lines and "no proxy is set" in lines[0] and "HTTP_PROXY" in lines[1], bare.stderr
    assert "Traceback" not in bare.stdout + bare.stderr
    assert docker("exec", host, "test", "-e", f"{KIT}/.venv", check=False).returncode != 0

    # The proxy, without its CA: pip cannot verify PyPI's certificate; the line names the CA.
    no_ca = setup_in(host, {"HTTPS_PROXY": proxy, "HTTP_PROXY": proxy})
    assert no_ca.returncode != 0
    lines = [line for line in no_ca.stderr.splitlines() if line.startswith(("error:", "  fix:"))]
    assert lines and "could not verify the certificate" in lines[0], no_ca.stderr
    assert "DEVKIT_CA_FILE" in lines[1] and "Traceback" not in no_ca.stderr
    assert docker("exec", host, "test", "-e", f"{KIT}/.venv", check=False).returncode != 0

    # Both: setup completes through the proxy, every download through it.
    done = setup_in(host, {"HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "DEVKIT_CA_FILE": ca_file})
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-3000:]
    assert "Ready in" in done.stdout
    seen = proxy_log.read_text()
    for site in ("pypi.org", "files.pythonhosted.org", "deb.debian.org"):
        assert site in seen, site
    # What the machine keeps for later runs: apt's proxy, the CA in the store, the daemon's.
    kept = docker(
        "exec", host, "sh", "-c",
        "cat /etc/apt/apt.conf.d/95devkit-proxy /etc/default/docker; "
        "grep -c 'BEGIN CERTIFICATE' /usr/local/share/ca-certificates/devkit-company-ca.crt",
    ).stdout  # fmt: skip
    assert f'Acquire::https::Proxy "{proxy}";' in kept and f"export https_proxy={proxy}" in kept
