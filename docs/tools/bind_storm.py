#!/usr/bin/env python3
"""Bind storm against `smpp serve`: CONNS connections at once, each in a
loop connecting, sending bind_transmitter, reading the answer and closing,
for SECONDS; prints binds answered per second and the answers by status.

    python3 docs/tools/bind_storm.py HOST:PORT SYSTEM_ID PASSWORD [CONNS] [SECONDS]

Standard library only. Measures what a password guesser or a reconnect
storm costs the server (docs/SECURITY.md has the numbers).
"""
import asyncio
import collections
import struct
import sys
import time


def bind_pdu(system_id: str, password: str, seq: int) -> bytes:
    body = (system_id.encode() + b"\0" + password.encode() + b"\0" + b"\0"
            + bytes([0x34, 0, 0]) + b"\0")
    return struct.pack(">IIII", 16 + len(body), 0x00000002, 0, seq) + body


async def worker(host, port, system_id, password, deadline, counts):
    seq = 1
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(bind_pdu(system_id, password, seq))
            header = await reader.readexactly(16)
            length, _, status, _ = struct.unpack(">IIII", header)
            await reader.readexactly(length - 16)
            counts[hex(status)] += 1
            writer.close()
            await writer.wait_closed()
        except (OSError, asyncio.IncompleteReadError) as e:
            counts[type(e).__name__] += 1
        seq += 1


async def main():
    addr, system_id, password = sys.argv[1], sys.argv[2], sys.argv[3]
    conns = int(sys.argv[4]) if len(sys.argv) > 4 else 16
    seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 5.0
    host, port = addr.rsplit(":", 1)
    counts = collections.Counter()
    start = time.monotonic()
    deadline = start + seconds
    await asyncio.gather(*(worker(host, int(port), system_id, password, deadline, counts)
                           for _ in range(conns)))
    elapsed = time.monotonic() - start
    total = sum(counts.values())
    print(f"{total / elapsed:.0f} binds/s ({total} in {elapsed:.1f} s, {conns} at once): "
          + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    asyncio.run(main())
