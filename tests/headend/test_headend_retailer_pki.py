"""A retailer's own PKI, made with the OpenSSL command line, over real mutual TLS on loopback
(found by an independent audit): client certificates from an issuing CA under a root worked
only with the issuing CA first in the ``ca`` file (alone: refused in the handshake; after the
root: 403); a revoked certificate could not be refused (no CRL); two retailers with the same CA
and common name were both accepted, the second never identified."""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.headend.helpers import Service
from tests.oracles import require
from zse.cli import main
from zse.headend.core import RateLimiter
from zse.headend.pki import (
    HeadendConfig,
    HeadendConfigError,
    init_directory,
    load_config,
    server_context,
)
from zse.headend.web import HeadendApp, serve

_CA_EXT = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
_CLIENT_EXT = "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\n"
_CA_CNF = """[ca]
default_ca = d
[d]
database = index.txt
crlnumber = crlnumber
default_md = sha256
default_crl_days = 30
"""


def _openssl(directory: Path, *args: str) -> None:
    subprocess.run([require("openssl"), *args], cwd=directory, check=True, capture_output=True)


def _key(directory: Path, name: str) -> None:
    _openssl(directory, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", f"{name}-key.pem")  # fmt: skip


def _root(directory: Path, name: str) -> None:
    """A self-signed root CA ``name.pem``."""
    _key(directory, name)
    _openssl(directory, "req", "-x509", "-new", "-key", f"{name}-key.pem", "-subj", f"/CN={name}",
             "-days", "30", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", f"{name}.pem")  # fmt: skip


def _issue(directory: Path, name: str, issuer: str, *, cn: str, ca: bool = False) -> None:
    """``name.pem`` (a CA's or a client's) issued by ``issuer``; a client's ``name-chain.pem``
    is it and its issuer, as a client presents it."""
    _key(directory, name)
    (directory / f"{name}.ext").write_text(_CA_EXT if ca else _CLIENT_EXT)
    _openssl(directory, "req", "-new", "-key", f"{name}-key.pem", "-subj", f"/CN={cn}",
             "-out", f"{name}.csr")  # fmt: skip
    _openssl(directory, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{issuer}.pem",
             "-CAkey", f"{issuer}-key.pem", "-CAcreateserial", "-days", "30",
             "-extfile", f"{name}.ext", "-out", f"{name}.pem")  # fmt: skip
    if not ca:
        chain = (directory / f"{name}.pem").read_text() + (directory / f"{issuer}.pem").read_text()
        (directory / f"{name}-chain.pem").write_text(chain)


def _crl(directory: Path, issuer: str, revoked: tuple[str, ...] = ()) -> str:
    """``issuer``'s CRL (30 days), listing the certificates ``revoked``; its file name."""
    work = directory / f"{issuer}-db"
    work.mkdir()
    (work / "ca.cnf").write_text(_CA_CNF)
    (work / "index.txt").write_text("")
    (work / "crlnumber").write_text("01\n")
    sign = ("-config", "ca.cnf", "-keyfile", f"../{issuer}-key.pem", "-cert", f"../{issuer}.pem")
    for name in revoked:
        _openssl(work, "ca", *sign, "-revoke", f"../{name}.pem")
    _openssl(work, "ca", *sign, "-gencrl", "-out", f"../{issuer}-crl.pem")
    return f"{issuer}-crl.pem"


def _retailer_e_pki(directory: Path) -> Path:
    """Retailer E's PKI beside the headend's: root ``e-root`` -> issuing CA ``e-issuing`` ->
    clients ``e`` and ``e2`` (CN retailer-e); a second issuing CA ``e-other`` under the same
    root -> ``e-sibling`` (CN retailer-e); ``ca`` files ``bundle-I`` (the issuing CA alone),
    ``bundle-RI`` (root first) and ``bundle-IR``."""
    _root(directory, "e-root")
    _issue(directory, "e-issuing", "e-root", cn="E issuing CA", ca=True)
    _issue(directory, "e-other", "e-root", cn="E other CA", ca=True)
    for client in ("e", "e2"):
        _issue(directory, client, "e-issuing", cn="retailer-e")
    _issue(directory, "e-sibling", "e-other", cn="retailer-e")
    root, issuing = ((directory / f"{n}.pem").read_text() for n in ("e-root", "e-issuing"))
    for name, text in (("I", issuing), ("RI", root + issuing), ("IR", issuing + root)):
        (directory / f"bundle-{name}.pem").write_text(text)
    return directory


@pytest.fixture
def served(service: Service) -> Path:
    """Retailer E's PKI in the running headend's directory."""
    return _retailer_e_pki(service.directory)


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """Retailer E's PKI in a ``zse headend init`` directory."""
    init_directory(tmp_path, port=0)
    return _retailer_e_pki(tmp_path)


def _config(directory: Path, *retailers: dict[str, str]) -> Path:
    """A headend.toml in ``directory`` with the headend's server certificate and these
    ``[[retailers]]``."""
    lines = ['[server]\ncertificate = "server.pem"\nkey = "server-key.pem"\n']
    for retailer in retailers:
        lines.append("[[retailers]]\n" + "".join(f'{k} = "{v}"\n' for k, v in retailer.items()))
    path = directory / "e.toml"
    path.write_text("\n".join(lines))
    return path


async def _serve(service: Service, config: HeadendConfig) -> None:
    """Serve the running headend with ``config``'s retailers and TLS context instead."""
    await service.runner.cleanup()
    service.app = HeadendApp(service.headend, config.retailers, limiter=RateLimiter(1000, 1000))
    service.runner, ports = await serve(
        service.app, server_context(config), host="127.0.0.1", port=0
    )
    service.port = ports[0]


def _blocking_status(port: int, context: ssl.SSLContext) -> int | None:
    """GET /api/v1/devices: the HTTP status, or None when the TLS handshake is refused."""
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(
                b"GET /api/v1/devices HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
            )
            reply = b""
            while chunk := tls.recv(65536):
                reply += chunk
    except (ssl.SSLError, ConnectionResetError):
        return None
    return int(reply.split()[1]) if reply.startswith(b"HTTP/1.1 ") else None


async def _status(service: Service, client: str, *, chain: bool = True) -> int | None:
    """What the headend answers ``client`` (presenting its chain, or its certificate alone)."""
    directory = service.directory
    context = ssl.create_default_context(cafile=directory / "ca.pem")
    certificate = f"{client}-chain.pem" if chain else f"{client}.pem"
    context.load_cert_chain(directory / certificate, directory / f"{client}-key.pem")
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, _blocking_status, service.port, context)


@pytest.mark.parametrize("bundle", ["I", "RI", "IR"])
@pytest.mark.parametrize("chain", [True, False], ids=["chain", "leaf-only"])
async def test_an_issuing_ca_identifies_its_retailer_in_any_order_of_the_ca_file(
    service: Service, served: Path, bundle: str, chain: bool
) -> None:
    """The ``ca`` file alone (no root: VERIFY_X509_PARTIAL_CHAIN), root first or issuing CA
    first: all identify retailer E (before: refused in the handshake, 403, 200)."""
    config = load_config(_config(served, {"id": "retailer-e", "ca": f"bundle-{bundle}.pem",
                                       "common_name": "retailer-e"}))  # fmt: skip
    await _serve(service, config)
    assert await _status(service, "e", chain=chain) == 200


async def test_a_sibling_issuing_ca_under_the_same_root_is_not_the_retailer(
    service: Service, served: Path
) -> None:
    """With the root in the ``ca`` file the handshake verifies a certificate of another issuing
    CA under it, but the retailer is its own issuing CA's: 403."""
    config = load_config(_config(served, {"id": "retailer-e", "ca": "bundle-RI.pem",
                                       "common_name": "retailer-e"}))  # fmt: skip
    await _serve(service, config)
    assert await _status(service, "e-sibling") == 403
    assert await _status(service, "e") == 200


async def test_a_revoked_certificate_is_refused_in_the_handshake(
    service: Service, served: Path
) -> None:
    crl = _crl(served, "e-issuing", revoked=("e2",))
    config = load_config(_config(served, {"id": "retailer-e", "ca": "bundle-I.pem",
                                       "common_name": "retailer-e", "crl": crl}))  # fmt: skip
    assert config.crl_files == (served / crl,)
    await _serve(service, config)
    before = service.app.requests
    assert await _status(service, "e2") is None
    assert service.app.requests == before
    assert await _status(service, "e") == 200


def _retailer_e(crl: str) -> dict[str, str]:
    return {"id": "retailer-e", "ca": "bundle-I.pem", "common_name": "retailer-e", "crl": crl}


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("missing", "No such file"),
        ("garbage", "not a PEM certificate revocation list"),
        ("other-ca", "not signed by a certificate of the retailer's ca"),
        ("expired", "has expired"),
        ("future", "is not valid before"),
    ],
)
def test_an_unusable_crl_is_a_config_error(pki: Path, case: str, error: str) -> None:
    """Checked at load (``zse headend serve`` exits 2), not at the first handshake, where an
    expired CRL would refuse every certificate of the retailer."""
    now = None
    crl = "e-issuing-crl.pem"
    if case == "garbage":
        (pki / crl).write_text("-----BEGIN X509 CRL-----\nnot base64\n-----END X509 CRL-----\n")
    elif case == "other-ca":
        crl = _crl(pki, "e-other")
    elif case != "missing":
        _crl(pki, "e-issuing")
        days = 31 if case == "expired" else -1
        now = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=days)
    with pytest.raises(HeadendConfigError, match=error) as raised:
        load_config(_config(pki, _retailer_e(crl)), now=now)
    assert str(pki / crl) in str(raised.value)


def test_a_crl_for_some_retailers_only_is_a_config_error(pki: Path) -> None:
    """VERIFY_CRL_CHECK_LEAF refuses a certificate whose CA has no CRL loaded: a retailer
    without one would be locked out."""
    other = {"id": "retailer-a", "ca": "ca.pem", "common_name": "retailer-a"}
    path = _config(pki, _retailer_e(_crl(pki, "e-issuing")), other)
    with pytest.raises(HeadendConfigError, match="retailer 'retailer-a' has no crl"):
        load_config(path)


@pytest.mark.parametrize(
    ("first", "second"), [("ca.pem", "ca.pem"), ("bundle-IR.pem", "bundle-I.pem")]
)
def test_two_retailers_that_cannot_be_told_apart_are_a_config_error(
    pki: Path, first: str, second: str
) -> None:
    """The same common name and an issuing CA in both ``ca`` files: the second retailer could
    never be identified (before: both accepted, every certificate the first's)."""
    path = _config(
        pki,
        {"id": "retailer-a", "ca": first, "common_name": "retailer-x"},
        {"id": "retailer-z", "ca": second, "common_name": "retailer-x"},
    )
    with pytest.raises(HeadendConfigError, match="'retailer-a' and 'retailer-z'"):
        load_config(path)
    path.write_text(path.read_text().replace('"retailer-x"\n', '"retailer-y"\n', 1))
    assert [r.id for r in load_config(path).retailers] == ["retailer-a", "retailer-z"]


def test_serve_with_an_unreadable_crl_exits_2_naming_it(pki: Path) -> None:
    """``zse headend serve`` stops before anything starts: one line, exit status 2."""
    (pki / "bad-crl.pem").write_text("not a CRL\n")
    config = _config(pki, _retailer_e("bad-crl.pem"))
    result = CliRunner().invoke(main, ["headend", "serve", "--config", str(config), "--sim", "1"])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert f"{pki / 'bad-crl.pem'}: not a PEM certificate revocation list" in result.stderr
