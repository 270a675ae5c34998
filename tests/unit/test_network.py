"""A company network's values (devkit/network.py): where each comes from, what every tool is
given, and the rules for a proxy URL and a CA file."""

from types import SimpleNamespace

import pytest

from devkit.network import SYSTEM_BUNDLE, Network, ca_problem, of_settings, proxy_problem

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("", ""),
        ("http://proxy.example.com:8080", ""),
        ("http://user:secret@proxy:3128", ""),
        ("https://proxy:443", ""),
        ("proxy.example.com:8080", "has no scheme: write it as http://proxy.example.com:8080"),
        ("socks5://proxy:1080", "not socks5://"),
        ("http://:8080", "names no host"),
        ("http://proxy:80x", "is not a URL"),
    ],
)
def test_a_proxy_url_is_what_apt_pip_and_docker_all_read(url, why):
    assert (why in proxy_problem(url)) if why else proxy_problem(url) == ""


def test_a_ca_file_must_be_readable_pem(tmp_path):
    import shutil

    assert ca_problem("") == ""
    assert "cannot read" in ca_problem(str(tmp_path / "none.pem"))
    der = tmp_path / "ca.cer"
    der.write_bytes(b"\x30\x82\x03\x1f" * 30)
    assert "is not a PEM certificate" in ca_problem(str(der))
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    assert "is not a valid PEM certificate" in ca_problem(str(broken))
    good = tmp_path / "good.pem"
    shutil.copy(SYSTEM_BUNDLE, good)
    assert ca_problem(str(good)) == ""


def test_settings_win_over_the_environment_and_every_value_is_named(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://env-proxy:8080")
    monkeypatch.setenv("no_proxy", "localhost")
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.delenv("DEVKIT_CA_FILE", raising=False)
    network = of_settings(SimpleNamespace(http_proxy="http://set:3128", https_proxy=""))
    assert (network.http_proxy, network.https_proxy, network.no_proxy) == (
        "http://set:3128",
        "http://env-proxy:8080",
        "localhost",
    )
    assert dict(network.sources) == {
        "http_proxy": "devkit.http_proxy",
        "https_proxy": "HTTPS_PROXY",
        "no_proxy": "no_proxy",
    }


def test_every_tool_gets_both_spellings_and_pip_the_system_bundle():
    env = Network("http://p:1", "http://p:2", "localhost", "/x/ca.pem").environment()
    assert env["http_proxy"] == env["HTTP_PROXY"] == "http://p:1"
    assert env["https_proxy"] == env["HTTPS_PROXY"] == "http://p:2"
    assert env["no_proxy"] == env["NO_PROXY"] == "localhost"
    assert env["PIP_CERT"] == SYSTEM_BUNDLE
    assert Network().environment() == {}
