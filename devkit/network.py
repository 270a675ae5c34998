"""A company network: the proxy and the company's CA, taken from the settings or the
environment, checked once, and handed to the `network` role (apt, the Docker daemon, the CA
store) and to every play's environment (pip, debootstrap, apt, image builds).

The rules for a proxy URL and a CA file live here; the settings model (devkit.settings.model)
and scripts/devkit's bootstrap apply them too (the latter by running this module, once Python
is there: `python3 -m devkit.network`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# Where Debian and Ubuntu keep the system's CA bundle, the company's CA included once the
# network role ran update-ca-certificates: pip is pointed there (it uses its own certifi
# bundle otherwise, which knows no company CA).
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
CA_FILE_VARIABLE = "DEVKIT_CA_FILE"


def proxy_problem(url: str) -> str:
    """Why URL is not a proxy address the tools all read ("" when it is, or is empty)."""
    from urllib.parse import urlsplit

    if not url:
        return ""
    if "://" not in url:
        return f"{url!r} has no scheme: write it as http://{url}"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError as exc:
        return f"{url!r} is not a URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return f"{url!r}: a proxy is reached over http:// (or https://), not {parts.scheme}://"
    if not parts.hostname:
        return f"{url!r} names no host"
    return ""


def ca_problem(path: str) -> str:
    """Why PATH is not a readable CA bundle in PEM ("" when it is, or is empty)."""
    import ssl

    if not path:
        return ""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 20)
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    if b"-----BEGIN CERTIFICATE-----" not in head:
        return f"{path} is not a PEM certificate (no BEGIN CERTIFICATE line; a DER file? convert it: openssl x509 -inform der -in FILE -out company-ca.pem)"
    try:
        ssl.create_default_context(cafile=path)
    except ssl.SSLError as exc:
        return f"{path} is not a valid PEM certificate ({exc.reason or exc})"
    return ""


@dataclass(frozen=True)
class Network:
    http_proxy: str = ""
    https_proxy: str = ""
    no_proxy: str = ""
    ca_file: str = ""
    # Where each value came from (a setting, or an environment variable), to name it in errors.
    sources: tuple[tuple[str, str], ...] = ()

    def problems(self) -> list[tuple[str, str]]:
        """(where, why) for each bad value."""
        where = dict(self.sources)
        found = []
        for name in ("http_proxy", "https_proxy"):
            if problem := proxy_problem(getattr(self, name)):
                found.append((where.get(name, name), problem))
        if problem := ca_problem(self.ca_file):
            found.append((where.get("ca_file", "ca_file"), problem))
        return found

    def environment(self) -> dict[str, str]:
        """What each tool reads: both spellings of the proxy variables (apt, curl and
        debootstrap read the lower case, Go programs and pip either), and pip pointed at the
        system bundle when there is a company CA."""
        env: dict[str, str] = {}
        for name in ("http_proxy", "https_proxy", "no_proxy"):
            if value := getattr(self, name):
                env[name] = env[name.upper()] = value
        if self.ca_file:
            env["PIP_CERT"] = env["REQUESTS_CA_BUNDLE"] = SYSTEM_BUNDLE
        return env

    def role_vars(self) -> dict:
        return {
            "network_http_proxy": self.http_proxy,
            "network_https_proxy": self.https_proxy,
            "network_no_proxy": self.no_proxy,
            "network_ca_file": self.ca_file,
            "network_environment": self.environment(),
        }


def of_settings(values) -> Network:
    """The network of a workstation: each setting, else its environment variable."""
    chosen, sources = {}, []
    for name, variables in (
        ("http_proxy", ("HTTP_PROXY", "http_proxy")),
        ("https_proxy", ("HTTPS_PROXY", "https_proxy")),
        ("no_proxy", ("NO_PROXY", "no_proxy")),
        ("ca_file", (CA_FILE_VARIABLE,)),
    ):
        value = str(getattr(values, name, "") or "")
        if value:
            sources.append((name, f"devkit.{name}"))
        else:
            found = next((v for v in variables if os.environ.get(v)), "")
            value = os.environ.get(found, "") if found else ""
            if found:
                sources.append((name, found))
        chosen[name] = value
    return Network(**chosen, sources=tuple(sources))


def check(network: Network) -> None:
    """A bad proxy URL or CA file stops the run before anything changes, naming where the
    value came from."""
    from devkit.errors import SettingsError

    if found := network.problems():
        where, why = found[0]
        setting = where.removeprefix("devkit.")
        fix = (
            f"fix devkit.{setting} in invoke.yaml (or INVOKE_DEVKIT_{setting.upper()})"
            if where.startswith("devkit.")
            else f"fix {where} in your environment (export {where}=…), or unset it"
        )
        raise SettingsError(f"{where}: {why}", fix)


def main() -> int:
    """`python3 -m devkit.network`: scripts/devkit's check of the environment before it
    bootstraps (no settings yet, nor the kit's dependencies): `check`'s line, exit 2."""
    import sys
    from types import SimpleNamespace

    from devkit.errors import SettingsError

    try:
        check(of_settings(SimpleNamespace()))
    except SettingsError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
