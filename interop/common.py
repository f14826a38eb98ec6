"""Shared by the interop scripts: the result lines `cargo xtask interop` counts.

Every check prints exactly one line, `PASS <peer>: <check>` or
`FAIL <peer>: <check>: <why>`; the xtask fails on any FAIL line, on a missing
line, or on a non-zero exit.
"""

import sys
import traceback

SYSTEM_ID = "smppclient1"
PASSWORD = "password"


class Checks:
    """Runs named checks and prints one PASS/FAIL line for each."""

    def __init__(self, peer):
        self.peer = peer
        self.failed = 0
        self.passed = 0

    def run(self, name, func, *args):
        try:
            func(*args)
        except Exception as e:  # noqa: BLE001 - any failure of a check is a FAIL line
            self.fail(name, f"{type(e).__name__}: {e}")
            traceback.print_exc(file=sys.stderr)
            return False
        self.ok(name)
        return True

    async def run_async(self, name, coro):
        try:
            await coro
        except Exception as e:  # noqa: BLE001
            self.fail(name, f"{type(e).__name__}: {e}")
            traceback.print_exc(file=sys.stderr)
            return False
        self.ok(name)
        return True

    def ok(self, name):
        self.passed += 1
        print(f"PASS {self.peer}: {name}", flush=True)

    def fail(self, name, why):
        self.failed += 1
        print(f"FAIL {self.peer}: {name}: {why}", flush=True)

    def exit(self):
        print(f"{self.peer}: {self.passed} passed, {self.failed} failed", file=sys.stderr)
        sys.exit(1 if self.failed else 0)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def host_port(argv):
    if len(argv) != 3:
        sys.exit(f"usage: {argv[0]} HOST PORT")
    return argv[1], int(argv[2])
