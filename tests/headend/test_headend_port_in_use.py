"""``zse headend serve`` on a port another socket listens on said ``error: OSError: [Errno
98] error while attempting to bind on address ('127.0.0.1', P): address already in use``; it
is now one line naming the address and port, exit status 1, in each way of serving meters;
a second listener (signed requests) that cannot start no longer leaves the first one open."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.headend.helpers import Service
from tests.zse_cli import run_zse
from zse.headend.core import RateLimiter
from zse.headend.pki import init_directory, server_context, server_names, signed_context
from zse.headend.web import HeadendApp, ListenError, serve


@pytest.fixture
def taken() -> Iterator[int]:
    """A loopback port a socket of this test listens on."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield int(held.getsockname()[1])


#: Each way ``zse headend serve`` serves meters (``{tmp}``: the test's directory).
EACH_WAY = pytest.mark.parametrize(
    "meters",
    [
        ["--sim", "1"],
        ["--meter", "m1", "--database", "{tmp}/headend.sqlite"],
        ["--esi", "{tmp}/esi.toml", "--radio", "sim"],
    ],
    ids=["sim", "gateways", "esi"],
)


@EACH_WAY
def test_a_port_in_use_is_one_line_naming_it(tmp_path: Path, taken: int, meters: list[str]) -> None:
    init_directory(tmp_path / "pki", port=0)
    (tmp_path / "esi.toml").write_text("[esi]\npermit_seconds = 60\n")
    config = str(tmp_path / "pki" / "headend.toml")
    argv = ["serve", "--config", config, "--port", str(taken)]
    argv += [a.replace("{tmp}", str(tmp_path)) for a in meters]
    done = run_zse("headend", *argv)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    said = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert said == [f"error: cannot listen on 127.0.0.1:{taken}: address already in use"]
    assert done.stderr.count("\n") == 1, done.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_signed_port_in_use_leaves_nothing_listening(service: Service) -> None:
    """The signed listener's port is the service's own: a :class:`ListenError` naming it (an
    ``OSError`` still), and the mutual-TLS listener started before it is closed again."""
    config = service.config
    limiter = RateLimiter(config.rate, config.burst)
    app = HeadendApp(service.headend, config.retailers, limiter=limiter, hosts=server_names(config))
    first = _free_port()
    signed = (signed_context(config), service.port)
    with pytest.raises(ListenError) as raised:
        await serve(app, server_context(config), host="127.0.0.1", port=first, signed=signed)
    assert str(raised.value) == (
        f"cannot listen on 127.0.0.1:{service.port}: address already in use"
    )
    assert isinstance(raised.value, OSError)
    with socket.socket() as again:  # was "address already in use": the runner left open
        again.bind(("127.0.0.1", first))


async def test_a_host_that_does_not_resolve_is_said_so(service: Service) -> None:
    """``[server] host`` that is no address (a typo, ``999.1.1.1``) was "unknown error -2":
    ``os.strerror`` of a resolver's error number, which is no system error."""
    config = service.config
    limiter = RateLimiter(config.rate, config.burst)
    app = HeadendApp(service.headend, config.retailers, limiter=limiter, hosts=server_names(config))
    with pytest.raises(ListenError) as raised:
        await serve(app, server_context(config), host="999.1.1.1", port=_free_port())
    with pytest.raises(socket.gaierror) as resolver:  # what the system's resolver says
        socket.getaddrinfo("999.1.1.1", 0)
    why = resolver.value.strerror
    assert str(raised.value).startswith("cannot listen on 999.1.1.1:")
    assert str(raised.value).endswith(f": {why[:1].lower()}{why[1:]}")
