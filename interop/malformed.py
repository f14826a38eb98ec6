"""Malformed raw bytes against our SMSC (no SMPP library: the point is bytes
no library would send). Each case expects what the SMPP spec and
smpp-reference.md §1.5/§7 say, the answer smpp-proto's DecodeError::response
names:

- command_length < 16 and a huge command_length: generic_nack ESME_RINVCMDLEN
  (0x02) with sequence 0 (the header is unusable), then the connection closes
  (framing is lost).
- an unknown command_id: generic_nack ESME_RINVCMDID (0x03) echoing the
  sequence; the session goes on (enquire_link answered after it).
- submit_sm before bind: submit_sm_resp ESME_RINVBNDSTS (0x04), same sequence;
  a bind on the same connection then succeeds.
- a truncated submit_sm body (ends after destination_addr): submit_sm_resp
  ESME_RINVCMDLEN (0x02); the session goes on.
- a C-string without its NUL (destination_addr runs to the end of the PDU):
  submit_sm_resp ESME_RINVDSTADR (0x0B), the field's own status; the session
  goes on.

After every case, a new connection must bind and submit successfully.
Usage: malformed.py HOST PORT
"""

import socket
import struct
import sys
import time

from common import PASSWORD, SYSTEM_ID, Checks, expect, host_port

PEER = "raw bytes"
GENERIC_NACK = 0x80000000
BIND_TRX, BIND_TRX_RESP = 0x00000009, 0x80000009
SUBMIT_SM, SUBMIT_SM_RESP = 0x00000004, 0x80000004
ENQUIRE_LINK, ENQUIRE_LINK_RESP = 0x00000015, 0x80000015
ROK, RINVCMDLEN, RINVCMDID, RINVBNDSTS, RINVDSTADR = 0x00, 0x02, 0x03, 0x04, 0x0B


def header(length, cid, status, seq):
    return struct.pack(">IIII", length, cid, status, seq)


def pdu(cid, seq, body=b""):
    return header(16 + len(body), cid, 0, seq) + body


def cstr(s):
    return s.encode() + b"\0"


BIND_BODY = cstr(SYSTEM_ID) + cstr(PASSWORD) + cstr("") + bytes([0x34, 0, 0]) + cstr("")
# service_type, source ton/npi/addr, dest ton/npi/addr
SUBMIT_ADDRS = cstr("") + bytes([1, 1]) + cstr("447700900123") + bytes([1, 1]) + cstr("447700900456")
# esm_class, protocol_id, priority, schedule, validity, registered_delivery,
# replace_if_present, data_coding, sm_default_msg_id, sm_length, short_message
SUBMIT_REST = bytes([0, 0, 0]) + cstr("") + cstr("") + bytes([0, 0, 0, 0]) + bytes([5]) + b"hello"
SUBMIT_BODY = SUBMIT_ADDRS + SUBMIT_REST


class Conn:
    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), timeout=5)

    def send(self, data):
        self.s.sendall(data)

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError(f"closed after {len(buf)} of {n} octets")
            buf += chunk
        return buf

    def read(self):
        """(command_id, status, sequence, body) of the next PDU."""
        length, cid, status, seq = struct.unpack(">IIII", self.recv_exact(16))
        expect(16 <= length <= 4096, f"answer has command_length {length}")
        return cid, status, seq, self.recv_exact(length - 16)

    def expect_answer(self, cid, status, seq):
        got = self.read()
        expect(got[:3] == (cid, status, seq),
               f"got (command_id {got[0]:#010x}, status {got[1]:#x}, seq {got[2]}), "
               f"want ({cid:#010x}, {status:#x}, {seq})")

    def expect_closed(self):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                data = self.s.recv(4096)
            except socket.timeout:
                break
            except ConnectionResetError:
                return
            if not data:
                return
            raise AssertionError(f"expected a close, got {data.hex()}")
        raise AssertionError("connection still open 5 s later")

    def bind(self, seq=1):
        self.send(pdu(BIND_TRX, seq, BIND_BODY))
        self.expect_answer(BIND_TRX_RESP, ROK, seq)

    def enquire_link(self, seq):
        self.send(pdu(ENQUIRE_LINK, seq))
        self.expect_answer(ENQUIRE_LINK_RESP, ROK, seq)

    def close(self):
        self.s.close()


def still_serving(host, port):
    c = Conn(host, port)
    c.bind(1)
    c.send(pdu(SUBMIT_SM, 2, SUBMIT_BODY))
    cid, status, seq, body = c.read()
    expect((cid, status, seq) == (SUBMIT_SM_RESP, ROK, 2), f"submit answer {cid:#x}/{status:#x}/{seq}")
    expect(len(body) > 1 and body.endswith(b"\0"), f"message_id {body!r}")
    c.close()


def length_too_small(host, port):
    c = Conn(host, port)
    c.bind()
    c.send(header(8, ENQUIRE_LINK, 0, 7))
    c.expect_answer(GENERIC_NACK, RINVCMDLEN, 0)
    c.expect_closed()


def length_huge(host, port):
    c = Conn(host, port)
    c.bind()
    c.send(header(0x7FFFFFFF, SUBMIT_SM, 0, 7) + SUBMIT_BODY)
    c.expect_answer(GENERIC_NACK, RINVCMDLEN, 0)
    c.expect_closed()


def unknown_command(host, port):
    c = Conn(host, port)
    c.bind()
    c.send(pdu(0x00000999, 7, b"\x01\x02\x03"))
    c.expect_answer(GENERIC_NACK, RINVCMDID, 7)
    c.enquire_link(8)
    c.close()


def submit_before_bind(host, port):
    c = Conn(host, port)
    c.send(pdu(SUBMIT_SM, 1, SUBMIT_BODY))
    c.expect_answer(SUBMIT_SM_RESP, RINVBNDSTS, 1)
    c.bind(2)
    c.close()


def truncated_body(host, port):
    c = Conn(host, port)
    c.bind()
    c.send(pdu(SUBMIT_SM, 7, SUBMIT_ADDRS))
    c.expect_answer(SUBMIT_SM_RESP, RINVCMDLEN, 7)
    c.enquire_link(8)
    c.close()


def missing_nul(host, port):
    c = Conn(host, port)
    c.bind()
    c.send(pdu(SUBMIT_SM, 7, cstr("") + bytes([1, 1]) + cstr("447700900123") + bytes([1, 1]) + b"4477009"))
    c.expect_answer(SUBMIT_SM_RESP, RINVDSTADR, 7)
    c.enquire_link(8)
    c.close()


CASES = [
    ("command_length < 16: generic_nack ESME_RINVCMDLEN seq 0, then close", length_too_small),
    ("huge command_length: generic_nack ESME_RINVCMDLEN seq 0, then close", length_huge),
    ("unknown command_id: generic_nack ESME_RINVCMDID, session goes on", unknown_command),
    ("submit_sm before bind: submit_sm_resp ESME_RINVBNDSTS, bind still possible", submit_before_bind),
    ("truncated submit_sm body: submit_sm_resp ESME_RINVCMDLEN, session goes on", truncated_body),
    ("C-string without NUL: submit_sm_resp ESME_RINVDSTADR, session goes on", missing_nul),
]


def main():
    host, port = host_port(sys.argv)
    checks = Checks(PEER)
    checks.run("baseline: bind and submit", still_serving, host, port)
    for name, case in CASES:
        checks.run(name, case, host, port)
        checks.run(f"after `{name.split(':')[0]}`: a new bind and submit succeed", still_serving, host, port)
    checks.exit()


if __name__ == "__main__":
    main()
