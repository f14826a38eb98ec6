"""PyPI `aiosmpplib` 0.7.4 (asyncio ESME) against our SMSC.

Checks: bind of each kind, GSM 7-bit and UCS-2 text, a concatenated long
message (UDH, split by aiosmpplib with auto_message_payload off), receipts on
a transceiver and on a receiver bound with the same account, enquire_link
(its keep-alive, every second here) and unbind (ESME.stop). aiosmpplib has no
query_sm: that is covered by smpplib and the Rust peers.
Usage: aiosmpplib_client.py HOST PORT
"""

import asyncio
import logging
import re
import sys

from aiosmpplib import ESME, AbstractHook, BindMode, PhoneNumber, SubmitSm
from aiosmpplib.protocol import DeliverSm, EnquireLinkResp, SubmitSmResp, Unbind

from common import PASSWORD, SYSTEM_ID, Checks, expect, host_port

PEER = "aiosmpplib 0.7.4"
WAIT = 10.0


class Recorder(AbstractHook):
    """Keeps every message aiosmpplib received or failed to send."""

    def __init__(self):
        self.messages = []
        self.raw = []
        self.sent = []
        self.errors = []
        self.changed = asyncio.Event()

    async def sending(self, smpp_message, pdu, client_id):
        self.sent.append(smpp_message)

    async def received(self, smpp_message, pdu, client_id):
        self.messages.append(smpp_message)
        self.raw.append(pdu)
        self.changed.set()

    async def send_error(self, smpp_message, error, client_id):
        self.errors.append((smpp_message, error))
        self.changed.set()

    def of(self, cls):
        return [m for m in self.messages if isinstance(m, cls)]

    async def until(self, what, predicate):
        async def wait():
            while True:
                expect(not self.errors, f"send errors: {self.errors}")
                if predicate():
                    return
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(wait(), WAIT)
        except TimeoutError:
            raise AssertionError(f"no {what} within {WAIT} s") from None


class Esme:
    def __init__(self, host, port, mode):
        self.hook = Recorder()
        self.mode = mode
        self.esme = ESME(
            smsc_host=host,
            smsc_port=port,
            system_id=SYSTEM_ID,
            password=PASSWORD,
            bind_mode=mode,
            enquire_link_interval=1.0,
            log_level=logging.WARNING,
            hook=self.hook,
            socket_timeout=5.0,
        )
        self.task = None

    async def start(self):
        self.task = asyncio.create_task(self.esme.start())
        for _ in range(200):
            if self.esme.session_state == self.mode.session_state:
                return
            expect(not self.task.done(), "ESME.start ended")
            await asyncio.sleep(0.05)
        raise AssertionError(f"not bound as {self.mode.name} within 10 s")

    async def submit(self, log_id, **kw):
        sm = SubmitSm(
            log_id=log_id,
            source=PhoneNumber("447700900123"),
            destination=PhoneNumber("447700900456"),
            **kw,
        )
        await self.esme.broker.enqueue(sm)

    def ids(self, log_id):
        return [r.message_id for r in self.hook.of(SubmitSmResp) if r.log_id == log_id]

    def raw_ids(self):
        """Every message id of a successful submit_sm_resp, from the raw PDUs:
        aiosmpplib reports a segmented message as one SubmitSmResp."""
        out = []
        for pdu in self.hook.raw:
            if len(pdu) > 16 and pdu[4:8] == b"\x80\x00\x00\x04" and pdu[8:12] == bytes(4):
                out.append(pdu[16:].split(b"\0", 1)[0].decode("ascii"))
        return out

    def receipted(self):
        """Ids of the receipts aiosmpplib parsed itself (it reports the
        receipts of a segmented message as one, for the last segment)."""
        out = set()
        for d in self.hook.of(DeliverSm):
            if d.is_receipt():
                out.add(str(d.parse_receipt().get("id")))
        return out

    def raw_receipted(self):
        """Ids named by every deliver_sm receipt, from the raw PDUs."""
        out = set()
        for pdu in self.hook.raw:
            if pdu[4:8] == b"\x00\x00\x00\x05":
                m = re.search(rb"id:(\S+)", pdu[16:])
                if m:
                    out.add(m.group(1).decode("ascii", "replace"))
        return out

    async def stop(self):
        await asyncio.wait_for(self.esme.stop(), WAIT)
        if self.task is not None:
            await asyncio.wait_for(self.task, WAIT)
        # ESME.stop sends unbind, then half-closes and cancels its reader without
        # waiting for unbind_resp (an aiosmpplib limitation): check the unbind went out.
        expect(any(isinstance(m, Unbind) for m in self.hook.sent), "no unbind sent")


async def bind_only(host, port, mode):
    e = Esme(host, port, mode)
    await e.start()
    await e.stop()


async def transceiver(host, port, checks):
    e = Esme(host, port, BindMode.TRANSCEIVER)
    if not await checks.run_async("transceiver: bind", e.start()):
        return
    long_text = "Long message part. " * 20
    ids = {"long": []}

    async def gsm7():
        await e.submit("gsm7", short_message="Hello @ interop £5 {ok}", registered_delivery=1)
        await e.hook.until("submit_sm_resp", lambda: e.ids("gsm7"))

    async def ucs2():
        await e.submit("ucs2", short_message="Привет, 世界", encoding="ucs2", registered_delivery=0)
        await e.hook.until("submit_sm_resp", lambda: e.ids("ucs2"))

    async def long_udh():
        before = len(e.raw_ids())
        await e.submit("long", short_message=long_text, esm_class=0x40,
                       auto_message_payload=False, registered_delivery=1)
        await e.hook.until("3 submit_sm_resp", lambda: len(e.raw_ids()) == before + 3)
        ids["long"] = e.raw_ids()[before:]
        expect(e.ids("long"), "no SubmitSmResp for the whole long message")

    async def receipts():
        want = set(e.ids("gsm7") + ids["long"])
        expect(len(want) == 4, f"ids {want}")
        await e.hook.until(f"receipts for {sorted(want)}", lambda: want <= e.raw_receipted())
        # aiosmpplib itself reports the GSM7 receipt and one for the long
        # message (whichever part's receipt completed it).
        parsed = e.receipted()
        expect(set(e.ids("gsm7")) <= parsed and parsed & set(ids["long"]),
               f"aiosmpplib parsed receipts for {sorted(parsed)}")

    async def enquire_link():
        await e.hook.until("enquire_link_resp", lambda: e.hook.of(EnquireLinkResp))

    await checks.run_async("transceiver: submit GSM 7-bit text (registered_delivery=1)", gsm7())
    await checks.run_async("transceiver: submit UCS-2 text", ucs2())
    await checks.run_async("transceiver: submit a 3-part concatenated message (UDH)", long_udh())
    await checks.run_async("transceiver: receipts for the GSM7 and every long part", receipts())
    await checks.run_async("transceiver: enquire_link (keep-alive)", enquire_link())
    await checks.run_async("transceiver: unbind (sent; aiosmpplib does not wait for unbind_resp)", e.stop())


async def transmitter_and_receiver(host, port, checks):
    rx = Esme(host, port, BindMode.RECEIVER)
    tx = Esme(host, port, BindMode.TRANSMITTER)
    if not await checks.run_async("receiver: bind", rx.start()):
        return
    if not await checks.run_async("transmitter: bind", tx.start()):
        await rx.stop()
        return

    async def send():
        await tx.submit("tx", short_message="receipt to the receiver", registered_delivery=1)
        await tx.hook.until("submit_sm_resp", lambda: tx.ids("tx"))

    async def receipt():
        want = set(tx.ids("tx"))
        await rx.hook.until(f"receipt for {want}", lambda: want and want <= rx.receipted())

    await checks.run_async("transmitter: submit GSM 7-bit text (registered_delivery=1)", send())
    await checks.run_async("receiver (same account): receipt of the transmitter's message", receipt())
    await checks.run_async("transmitter: unbind (sent)", tx.stop())
    await checks.run_async("receiver: unbind (sent)", rx.stop())


async def main():
    host, port = host_port(sys.argv)
    checks = Checks(PEER)
    for mode in (BindMode.TRANSMITTER, BindMode.RECEIVER, BindMode.TRANSCEIVER):
        await checks.run_async(f"bind {mode.name.lower()} then unbind", bind_only(host, port, mode))
    await transceiver(host, port, checks)
    await transmitter_and_receiver(host, port, checks)
    checks.exit()


if __name__ == "__main__":
    asyncio.run(main())
