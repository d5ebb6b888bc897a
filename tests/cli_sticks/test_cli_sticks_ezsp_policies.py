"""The ESI on bellows' real application, over the fake serial link to a fake coordinator NCP:
the Trust Center's EZSP key request policies are Silicon Labs' SE security profiles', not
bellows' defaults (audit han-radios, finding 7)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import bellows.types as bt

from tests.cli_sticks.fake_stick import StickNcp
from tests.cli_sticks.sticks_helpers import ESI_CREDENTIALS, Operator, ezsp_factory
from zse.cli.esi import run_esi
from zse.config import EsiConfig, RadioSettings

RADIO = RadioSettings(radio="ezsp", device="/dev/fake-ncp")


async def test_the_esi_denies_trust_center_and_application_key_requests(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    """bellows' default TC_KEY_REQUEST_POLICY answers any device's APS Request Key for a
    Trust Center link key with the current key; Silicon Labs' SE security profiles deny it
    (security-config.h, SE_TEST and SE_FULL). The ESI now sets DENY_TC_KEY_REQUESTS, and keeps
    application key requests denied (zse hands out no partner link keys)."""
    ncp = StickNcp(8)
    operator = Operator()
    operator.type("quit")
    status = await run_esi(
        EsiConfig(radio=RADIO, database=tmp_path / "han.db"),
        credentials=[ESI_CREDENTIALS],
        lines=operator.lines(),
        out=operator.out,
        app_factory=ezsp_factory(ncp, serial_link),
    )
    assert status == 0, operator.text()
    policies = {
        bt.EzspPolicyId(request["policyId"]): bt.EzspDecisionId(request["decisionId"])
        for name, request in ncp.requests
        if name == "setPolicy"
    }
    assert policies[bt.EzspPolicyId.TC_KEY_REQUEST_POLICY] == (
        bt.EzspDecisionId.DENY_TC_KEY_REQUESTS
    )
    assert policies[bt.EzspPolicyId.APP_KEY_REQUEST_POLICY] == (
        bt.EzspDecisionId.DENY_APP_KEY_REQUESTS
    )
