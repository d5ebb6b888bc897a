"""A request is answered only by a frame that can answer it (ZCL 2.4.1.3: a TSN is its
sender's own): the peer's own frames that happen to carry the request's TSN, an attribute
report above all, are not its answer. Found as a rare failure of
``test_metering_server.py::test_profile_and_reporting_survive_a_restart``, whose Get Profile
was "answered" by the meter's Report Attributes of the same TSN."""

from __future__ import annotations

import asyncio
import dataclasses

from zigpy.zcl import foundation

from tests.services.test_delivery import REQUEST, Recorder
from zse.zcl.frame import ZclMessage

G = foundation.GeneralCommand
PEER = 0x1234
_CLUSTER = 0x01  # frame control: cluster-specific (ZCL 2.4.1.1.1)
_GLOBAL = 0x00


def from_peer(tsn: int, command_id: int, frame_control: int) -> ZclMessage:
    return dataclasses.replace(
        REQUEST,
        src_nwk=PEER,
        tsn=tsn,
        command_id=command_id,
        frame_control=frame_control,  # client to server: the Recorder's Price server asked
    )


async def asked(
    radio: Recorder, command_id: int, *, cluster: bool
) -> tuple[asyncio.Future[ZclMessage], int]:
    """The request sent (not answered yet) and its TSN."""
    task = asyncio.ensure_future(
        radio.request(PEER, 1, REQUEST.cluster_id, command_id, b"", cluster_specific=cluster)
    )
    await asyncio.sleep(0)
    (frame,) = radio.sent
    return task, frame["tsn"]


async def test_a_report_with_the_tsn_of_a_cluster_request_is_not_its_answer() -> None:
    radio = Recorder()
    task, tsn = await asked(radio, 0x06, cluster=True)
    radio._accept(from_peer(tsn, G.Report_Attributes, _GLOBAL))  # the peer's own, same TSN
    radio._accept(from_peer(tsn, G.Read_Attributes_rsp, _GLOBAL))  # nor a global response
    await asyncio.sleep(0)
    assert not task.done()
    answer = from_peer(tsn, 0x06, _CLUSTER)
    radio._accept(answer)
    assert await task is answer


async def test_a_default_response_answers_any_request() -> None:
    for command_id, cluster in ((0x02, True), (G.Read_Attributes, False)):
        radio = Recorder()
        task, tsn = await asked(radio, command_id, cluster=cluster)
        answer = from_peer(tsn, G.Default_Response, _GLOBAL)
        radio._accept(answer)
        assert await task is answer


async def test_a_global_request_takes_its_own_response_only() -> None:
    radio = Recorder()
    task, tsn = await asked(radio, G.Configure_Reporting, cluster=False)
    radio._accept(from_peer(tsn, G.Report_Attributes, _GLOBAL))
    radio._accept(from_peer(tsn, 0x00, _CLUSTER))  # a cluster command of the peer's
    radio._accept(from_peer(tsn, G.Read_Attributes_rsp, _GLOBAL))
    await asyncio.sleep(0)
    assert not task.done()
    answer = from_peer(tsn, G.Configure_Reporting_rsp, _GLOBAL)
    radio._accept(answer)
    assert await task is answer
