"""Review of the Z-Stack inter-PAN transport against zigpy-znp 1.1 as installed: a send that
Z-Stack never confirms, and the transport's exceptions (zse's own, :class:`ZseError`)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.interpan.test_interpan_znp_transport import (
    HeldConfirms,
    _connected,
    frame,
    transport_for,
)
from zse.errors import ZseError
from zse.interpan import DeliveryMode
from zse.radios.znp import ZnpTransport


async def test_a_send_z_stack_never_confirms_fails_with_what_was_missing(
    serial_link: Callable[..., None],
) -> None:
    """zigpy-znp's ``request_callback_rsp`` raises a bare TimeoutError (no message) when no
    AF.DataConfirm comes: it escaped as is, an empty line in a log."""
    radio = HeldConfirms()  # answers the request, never confirms it
    api = await _connected(serial_link, radio)
    transport: ZnpTransport = transport_for(api, confirm_timeout=2)
    await transport.start(register=True)
    with pytest.raises(TimeoutError) as info:  # an OSError: the service resends at a deadline
        await transport.send(frame(DeliveryMode.UNICAST))
    assert isinstance(info.value, ZseError)
    assert "Z-Stack" in str(info.value)
    assert "AF.DataConfirm" in str(info.value)
    assert "within 2 s" in str(info.value)
    assert len(radio.held) == 1
    await transport.close()
    api.close()
