"""The headend's TLS server key (``key`` in ``headend.toml``) readable by other users was used
without a word, whereas the MQTT client's key is warned about (audit mqtt-ha-tls, finding 13;
zse writes its own keys with mode 0600, docs/security.md). Such a key is now used with a
warning naming the file and its mode, never its content."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from zse.headend.pki import init_directory, load_config, server_context


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_server_key_others_may_read_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    init_directory(tmp_path, port=0)
    config = tmp_path / "headend.toml"
    key = tmp_path / "server-key.pem"
    secret = key.read_text().splitlines()[1]
    for mode, warned in ((0o644, True), (0o604, True), (0o640, True), (0o600, False)):
        key.chmod(mode)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="zse"):
            loaded = load_config(config)
            server_context(loaded)  # used all the same
        said = [r.getMessage() for r in caplog.records]
        assert bool(said) is warned, (oct(mode), said)
        if warned:
            (line,) = said
            assert "[server] key" in line
            assert str(key) in line
            assert f"{mode:03o}" in line
            assert secret not in line


def test_a_missing_server_key_is_left_to_its_loading(tmp_path: Path) -> None:
    """No warning for a key that is not there: loading the TLS files names it."""
    init_directory(tmp_path, port=0)
    (tmp_path / "server-key.pem").unlink()
    assert load_config(tmp_path / "headend.toml").key == tmp_path / "server-key.pem"
