"""PyPI `smpplib` 2.2.4 (synchronous client) against our SMSC.

Checks: bind of each kind (transmitter, receiver, transceiver), GSM 7-bit and
UCS-2 text, a concatenated long message (UDH, 8-bit reference, built by
smpplib.gsm.make_parts), a delivery receipt back on a transceiver and on a
receiver bound with the same account, query_sm of a submitted id,
enquire_link, and unbind. Usage: smpplib_client.py HOST PORT
"""

import socket
import sys
import time

import smpplib.client
import smpplib.exceptions
import smpplib.consts
import smpplib.gsm
import smpplib.smpp

from common import PASSWORD, SYSTEM_ID, Checks, expect, host_port

PEER = "smpplib 2.2.4"
RECEIPT_WAIT = 10.0


def connect(host, port, kind):
    c = smpplib.client.Client(host, port, timeout=2, allow_unknown_opt_params=True)
    c.connect()
    resp = getattr(c, f"bind_{kind}")(system_id=SYSTEM_ID, password=PASSWORD)
    expect(resp.command == f"bind_{kind}_resp", f"answer was {resp.command}")
    expect(resp.status == 0, f"bind status {resp.status}")
    return c


def read(c, want, deadline, seen):
    """Reads PDUs until one whose command is `want`, answering deliver_sm and
    enquire_link on the way (deliver_sm are kept in `seen`)."""
    while time.monotonic() < deadline:
        try:
            pdu = c.read_pdu()
        except socket.timeout:
            continue
        if pdu.command == "deliver_sm":
            seen.append(pdu)
            resp = smpplib.smpp.make_pdu("deliver_sm_resp", client=c)
            resp.sequence = pdu.sequence
            c.send_pdu(resp)
        elif pdu.command == "enquire_link":
            resp = smpplib.smpp.make_pdu("enquire_link_resp", client=c)
            resp.sequence = pdu.sequence
            c.send_pdu(resp)
        if pdu.command == want:
            return pdu
    raise TimeoutError(f"no {want} in time")


def submit(c, short_message, data_coding=0, esm_class=0, receipt=False, seen=None):
    """Submits and waits for the answer; deliver_sm arriving meanwhile (the
    receipts of earlier submissions) are kept in `seen` when given."""
    c.send_message(
        source_addr_ton=smpplib.consts.SMPP_TON_INTL,
        source_addr="447700900123",
        dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
        destination_addr="447700900456",
        short_message=short_message,
        data_coding=data_coding,
        esm_class=esm_class,
        registered_delivery=1 if receipt else 0,
    )
    resp = read(c, "submit_sm_resp", time.monotonic() + 5, [] if seen is None else seen)
    expect(resp.status == 0, f"submit_sm_resp status {resp.status}")
    mid = resp.message_id.decode() if isinstance(resp.message_id, bytes) else resp.message_id
    expect(mid, "empty message_id")
    return mid


def receipt_id(pdu):
    """The receipted id: the TLV, else the `id:` word of the receipt text."""
    rid = getattr(pdu, "receipted_message_id", None)
    if rid:
        return rid.decode() if isinstance(rid, bytes) else rid
    text = pdu.short_message.decode("latin-1")
    for word in text.split():
        if word.startswith("id:"):
            return word[3:]
    return None


def wait_receipts(c, ids, seen):
    deadline = time.monotonic() + RECEIPT_WAIT
    missing = set(ids)
    while missing and time.monotonic() < deadline:
        for pdu in seen:
            expect(pdu.esm_class & 0x3C == 0x04, f"deliver_sm esm_class {pdu.esm_class:#04x} is no receipt")
            missing.discard(receipt_id(pdu))
        seen.clear()
        if missing:
            try:
                read(c, "never", min(deadline, time.monotonic() + 0.5), seen)
            except TimeoutError:
                pass
    expect(not missing, f"no receipt for {sorted(missing)}")


def unbind(c):
    resp = c.unbind()
    expect(resp.command == "unbind_resp", f"answer was {resp.command}")
    expect(resp.status == 0, f"unbind_resp status {resp.status}")
    c.disconnect()


def transceiver(host, port, checks):
    c = connect(host, port, "transceiver")
    ids = {}
    seen = []

    def gsm7():
        text = "Hello @ interop £5 {ok}"
        parts, coding, esm = smpplib.gsm.make_parts(text)
        expect(len(parts) == 1 and coding == smpplib.consts.SMPP_ENCODING_DEFAULT, "not one GSM7 part")
        ids["gsm7"] = submit(c, parts[0], coding, esm, receipt=True, seen=seen)

    def ucs2():
        parts, coding, esm = smpplib.gsm.make_parts("Привет, 世界")
        expect(coding == smpplib.consts.SMPP_ENCODING_ISO10646, f"coding {coding} is not UCS-2")
        ids["ucs2"] = submit(c, parts[0], coding, esm, seen=seen)

    def long_udh():
        parts, coding, esm = smpplib.gsm.make_parts("Long message part. " * 20)
        expect(len(parts) == 3 and esm == smpplib.consts.SMPP_GSMFEAT_UDHI, f"{len(parts)} parts, esm {esm}")
        ids["long"] = [submit(c, p, coding, esm, receipt=True, seen=seen) for p in parts]

    def receipts():
        wait_receipts(c, [ids["gsm7"], *ids["long"]], seen)

    def query():
        c.query_message(message_id=ids["gsm7"], source_addr_ton=smpplib.consts.SMPP_TON_INTL,
                        source_addr_npi=smpplib.consts.SMPP_NPI_ISDN, source_addr="447700900123")
        resp = read(c, "query_sm_resp", time.monotonic() + 5, seen)
        expect(resp.status == 0, f"query_sm_resp status {resp.status}")
        mid = resp.message_id.decode() if isinstance(resp.message_id, bytes) else resp.message_id
        expect(mid == ids["gsm7"], f"query_sm_resp names {mid!r}, not {ids['gsm7']!r}")
        # After the receipt the message is final: DELIVERED (2).
        expect(int(resp.message_state) == 2, f"message_state {resp.message_state}, want 2 (DELIVERED)")

    def enquire_link():
        c.send_pdu(smpplib.smpp.make_pdu("enquire_link", client=c))
        resp = read(c, "enquire_link_resp", time.monotonic() + 5, seen)
        expect(resp.status == 0, f"enquire_link_resp status {resp.status}")

    checks.run("transceiver: submit GSM 7-bit text (registered_delivery=1)", gsm7)
    checks.run("transceiver: submit UCS-2 text", ucs2)
    checks.run("transceiver: submit a 3-part concatenated message (UDH)", long_udh)
    checks.run("transceiver: receipts for the GSM7 and every long part", receipts)
    checks.run("transceiver: query_sm of the GSM7 id says DELIVERED", query)
    checks.run("transceiver: enquire_link", enquire_link)
    checks.run("transceiver: unbind", unbind, c)


def transmitter_and_receiver(host, port, checks):
    rx = connect(host, port, "receiver")
    tx = connect(host, port, "transmitter")
    ids = {}

    def send():
        ids["id"] = submit(tx, smpplib.gsm.gsm_encode("receipt to the receiver"), receipt=True)

    def receipt():
        wait_receipts(rx, [ids["id"]], [])

    checks.run("transmitter: submit GSM 7-bit text (registered_delivery=1)", send)
    checks.run("receiver (same account): receipt of the transmitter's message", receipt)
    checks.run("transmitter: unbind", unbind, tx)
    checks.run("receiver: unbind", unbind, rx)


def bind_refused(host, port, system_id, password, status):
    c = smpplib.client.Client(host, port, timeout=2, allow_unknown_opt_params=True)
    c.connect()
    try:
        c.bind_transceiver(system_id=system_id, password=password)
    except smpplib.exceptions.PDUError as e:
        got = e.args[1] if len(e.args) > 1 else None
        expect(got == status, f"refused with {got!r}, want {status:#x}")
        return
    finally:
        c.disconnect()
    raise AssertionError("the bind was accepted")


def query_unknown(host, port):
    c = connect(host, port, "transceiver")
    c.query_message(message_id="no-such-id-42", source_addr_ton=1, source_addr_npi=1,
                    source_addr="447700900123")
    resp = read(c, "query_sm_resp", time.monotonic() + 5, [])
    expect(resp.status != 0, "query_sm of an unknown id answered ESME_ROK")
    unbind(c)


def main():
    host, port = host_port(sys.argv)
    checks = Checks(PEER)
    for kind in ("transmitter", "receiver", "transceiver"):
        checks.run(f"bind_{kind} then unbind", lambda k=kind: unbind(connect(host, port, k)))
    checks.run("bind with a wrong password: ESME_RINVPASWD", bind_refused, host, port,
               SYSTEM_ID, "wrong", 0x0E)
    checks.run("bind with an unknown system_id: ESME_RINVSYSID", bind_refused, host, port,
               "nobody", PASSWORD, 0x0F)
    checks.run("query_sm of an unknown id: an error status", query_unknown, host, port)
    try:
        transceiver(host, port, checks)
    except Exception as e:  # noqa: BLE001 - a failed bind fails the group
        checks.fail("transceiver group", f"{type(e).__name__}: {e}")
    try:
        transmitter_and_receiver(host, port, checks)
    except Exception as e:  # noqa: BLE001
        checks.fail("transmitter/receiver group", f"{type(e).__name__}: {e}")
    checks.exit()


if __name__ == "__main__":
    main()
