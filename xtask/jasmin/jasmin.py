#!/usr/bin/env python3
"""Jasmin 0.11.1 for `cargo xtask bench gateway`: install, patch, configure,
provision, run and stop. Standard library only (runs on the system python3).

  jasmin.py setup DIR
      venv in DIR/venv with jasmin==0.11.1 from PyPI; its sdist's
      amqp0-9-1.xml (the wheel lacks it) in DIR/resource; the receipt fix of
      jookies/jasmin#1236 applied to the installed listeners.py (three lines,
      reported). Idempotent.

  jasmin.py run DIR --upstream-port P [--smpp-port P] [--http-port P]
                [--jcli-port P] [--user U] [--password PW]
      Checks that Redis (6379) and RabbitMQ (5672) answer and that no other
      jasmind holds /tmp/jasmind.lock (one per machine); writes DIR/jasmin.cfg
      (every listener on 127.0.0.1, dlr_lookup_retry_delay = 1), starts
      jasmind (with its DLR lookup and DLR thrower, as Jasmin's Docker image
      does), provisions it over jCli (a group, a user, an SMPP client
      connector to 127.0.0.1:P with submit_throughput 0, a DefaultRoute at
      rate 0.00, `smppccm -1`), waits until the connector is bound, then
      prints

          JASMIND PID <pid>
          SMPP listening on 127.0.0.1:<smpp-port>
          HTTP listening on 127.0.0.1:<http-port>

      and runs until its stdin closes (or SIGTERM/SIGINT), then stops
      jasmind (SIGTERM, SIGKILL after 10 s) and removes the lock if jasmind
      left it behind.
"""

import argparse
import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import tarfile
import time

VERSION = "0.11.1"

# jookies/jasmin#1236: the submit_sm_resp handler builds the DLR map from the
# request PDU (`_pdu.response`, the response *class*) instead of the response
# it got (`r.response`), so no receipt is ever matched (DLRMapNotFound).
PATCH_FROM = (
    "                dlr = DLR(pdu_type=_pdu.response.id, msgid=msgid, status=_pdu.response.status,\n"
    "                          smpp_msgid=_pdu.response.params['message_id'])\n"
    "            else:\n"
    "                dlr = DLR(pdu_type=_pdu.response.id, msgid=msgid, status=_pdu.response.status)\n"
)
PATCH_TO = (
    "                dlr = DLR(pdu_type=r.response.id, msgid=msgid, status=r.response.status,\n"
    "                          smpp_msgid=r.response.params['message_id'])\n"
    "            else:\n"
    "                dlr = DLR(pdu_type=r.response.id, msgid=msgid, status=r.response.status)\n"
)

LOCK = "/tmp/jasmind.lock"


def log(msg):
    print(f"jasmin.py: {msg}", file=sys.stderr, flush=True)


def site_packages(venv):
    lib = os.path.join(venv, "lib")
    for name in sorted(os.listdir(lib)):
        if name.startswith("python"):
            return os.path.join(lib, name, "site-packages")
    raise SystemExit(f"no site-packages under {lib}")


def setup(d):
    d = os.path.abspath(d)
    os.makedirs(d, exist_ok=True)
    venv = os.path.join(d, "venv")
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", venv])
    stamp = os.path.join(venv, "jasmin-installed")
    if not os.path.exists(stamp):
        subprocess.check_call([py, "-m", "pip", "install", "--quiet",
                               "--disable-pip-version-check", f"jasmin=={VERSION}"])
        open(stamp, "w").write(VERSION + "\n")
    resource = os.path.join(d, "resource")
    spec = os.path.join(resource, "amqp0-9-1.xml")
    if not os.path.exists(spec):
        sdist_dir = os.path.join(d, "sdist")
        sdist = os.path.join(sdist_dir, f"jasmin-{VERSION}.tar.gz")
        if not os.path.exists(sdist):
            subprocess.check_call([py, "-m", "pip", "download", "--quiet", "--no-deps",
                                   "--no-binary", ":all:", "--disable-pip-version-check",
                                   "-d", sdist_dir, f"jasmin=={VERSION}"])
        os.makedirs(resource, exist_ok=True)
        member = f"jasmin-{VERSION}/misc/config/resource/amqp0-9-1.xml"
        with tarfile.open(sdist) as tar:
            data = tar.extractfile(member).read()
        open(spec, "wb").write(data)
    listeners = os.path.join(site_packages(venv), "jasmin", "managers", "listeners.py")
    text = open(listeners).read()
    if PATCH_FROM in text:
        open(listeners, "w").write(text.replace(PATCH_FROM, PATCH_TO, 1))
        log(f"patched {listeners} for jookies/jasmin#1236 (3 lines: the DLR map from r.response)")
    elif PATCH_TO in text:
        log(f"{listeners}: the jookies/jasmin#1236 patch is in place (3 lines: the DLR map from r.response)")
    else:
        raise SystemExit(f"{listeners}: neither the unpatched nor the patched lines: "
                         "not jasmin 0.11.1?")


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_port(port, secs, proc):
    until = time.time() + secs
    while time.time() < until:
        if port_open(port):
            return
        if proc.poll() is not None:
            raise SystemExit(f"jasmind exited ({proc.returncode}) before listening on {port}")
        time.sleep(0.2)
    raise SystemExit(f"jasmind: nothing listens on {port} after {secs} s")


def jasmind_running():
    """PIDs of running jasmind processes (anyone's)."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmd = open(f"/proc/{name}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if any(part.endswith(b"jasmind.py") for part in cmd):
            pids.append(int(name))
    return pids


def config(d, a):
    log_dir = os.path.join(d, "log")
    store = os.path.join(d, "store")
    os.makedirs(log_dir, exist_ok=True)
    os.makedirs(store, exist_ok=True)
    for f in os.listdir(store):
        os.remove(os.path.join(store, f))
    lo = "127.0.0.1"
    cfg = f"""# Written by xtask/jasmin/jasmin.py for `cargo xtask bench gateway`.
[smpp-server]
bind = {lo}
port = {a.smpp_port}
log_level = WARNING
[smpp-server-pb]
bind = {lo}
port = {a.smpp_pb_port}
[client-management]
bind = {lo}
port = {a.cm_port}
store_path = {store}
[service-smppclient]
log_level = WARNING
[sm-listener]
log_level = WARNING
[dlr]
dlr_lookup_retry_delay = 1
log_level = WARNING
[amqp-broker]
host = {lo}
port = 5672
spec = {d}/resource/amqp0-9-1.xml
[http-api]
bind = {lo}
port = {a.http_port}
log_level = WARNING
[router]
bind = {lo}
port = {a.router_port}
store_path = {store}
log_level = WARNING
[deliversm-thrower]
log_level = WARNING
[dlr-thrower]
log_level = WARNING
[redis-client]
host = {lo}
port = 6379
log_level = WARNING
[jcli]
bind = {lo}
port = {a.jcli_port}
[interceptor-client]
host = {lo}
port = {a.interceptor_port}
"""
    path = os.path.join(d, "jasmin.cfg")
    open(path, "w").write(cfg)
    return path, log_dir, store


class JCli:
    """A jCli session: telnet negotiation dropped, prompts awaited."""

    def __init__(self, port, user, password):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""
        self.read_until([b"Authentication required"])
        self.sock.sendall(user.encode() + b"\r\n")
        self.read_until([b"Password:"])
        self.sock.sendall(password.encode() + b"\r\n")
        out = self.read_until([b"jcli : "])
        if b"Incorrect" in out:
            raise SystemExit("jCli refused the admin credentials")

    def read_until(self, marks, secs=30):
        until = time.time() + secs
        while time.time() < until:
            clean = re.sub(rb"\xff[\xfb-\xfe].|\xff[\xf0-\xfa]", b"", self.buf, flags=re.S)
            for m in marks:
                at = clean.find(m)
                if at >= 0:
                    self.buf = b""
                    return clean[:at]
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SystemExit("jCli closed the connection")
            self.buf += chunk
        raise SystemExit(f"jCli: no {marks} within {secs} s; got {self.buf[-300:]!r}")

    def cmd(self, line, prompt=b"jcli : "):
        self.sock.sendall(line.encode() + b"\r\n")
        out = self.read_until([prompt]).decode(errors="replace")
        bad = ("Unknown", "Error", "error", "Failed", "failed", "Invalid", "invalid")
        if any(b in out for b in bad):
            raise SystemExit(f"jCli `{line}`: {out.strip()}")
        return out

    def add(self, command, fields):
        self.cmd(command, b"> ")
        for key, value in fields:
            self.cmd(f"{key} {value}", b"> ")
        return self.cmd("ok")


def provision(a):
    j = JCli(a.jcli_port, "jcliadmin", "jclipwd")
    j.add("group -a", [("gid", "bench")])
    j.add("user -a", [("username", a.user), ("password", a.password),
                      ("gid", "bench"), ("uid", a.user)])
    j.add("smppccm -a", [("cid", "upstream"), ("host", "127.0.0.1"),
                         ("port", a.upstream_port), ("username", a.upstream_user),
                         ("password", a.upstream_password), ("submit_throughput", "0")])
    j.add("mtrouter -a", [("type", "DefaultRoute"), ("connector", "smppc(upstream)"),
                          ("rate", "0.00")])
    j.cmd("smppccm -1 upstream")
    until = time.time() + 30
    while time.time() < until:
        out = j.cmd("smppccm -l")
        if re.search(r"#upstream\s+started\s+BOUND_TRX", out):
            return
        time.sleep(0.5)
    raise SystemExit(f"the upstream connector did not bind within 30 s: {out}")


def run(a):
    d = os.path.abspath(a.dir)
    py = os.path.join(d, "venv", "bin", "python")
    jasmind = os.path.join(d, "venv", "bin", "jasmind.py")
    if not os.path.exists(jasmind):
        raise SystemExit(f"{jasmind}: run `jasmin.py setup {a.dir}` first")
    for port, name in ((6379, "Redis"), (5672, "RabbitMQ")):
        if not port_open(port):
            raise SystemExit(f"{name} does not answer on 127.0.0.1:{port} (see TOOLING.md)")
    others = jasmind_running()
    if others:
        raise SystemExit(f"another jasmind runs (pid {others}): one per machine (/tmp/jasmind.lock)")
    if os.path.lexists(LOCK):
        log(f"removing a stale {LOCK} (no jasmind runs)")
        os.remove(LOCK)
    for port in (a.smpp_port, a.http_port, a.jcli_port, a.smpp_pb_port, a.cm_port, a.router_port):
        if port_open(port):
            raise SystemExit(f"port {port} is taken")
    cfg, log_dir, store = config(d, a)
    env = dict(os.environ, ROOT_PATH=d, LOG_PATH=log_dir, STORE_PATH=store,
               CONFIG_PATH=d, RESOURCE_PATH=os.path.join(d, "resource"),
               PYTHONDONTWRITEBYTECODE="1")
    out = open(os.path.join(log_dir, "jasmind.out"), "ab")

    def die_with_parent():
        # PR_SET_PDEATHSIG: jasmind gets SIGTERM if this wrapper dies, even by
        # SIGKILL, so it never outlives the bench holding /tmp/jasmind.lock.
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
        except OSError:
            pass

    proc = subprocess.Popen([py, jasmind, "--config", cfg, "--enable-dlr-lookup",
                             "--enable-dlr-thrower"],
                            env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                            cwd=d, preexec_fn=die_with_parent)
    stopping = []

    def stop(*_):
        if stopping:
            return
        stopping.append(1)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                log("jasmind did not stop in 10 s: SIGKILL")
                proc.kill()
                proc.wait()
        if os.path.lexists(LOCK) and not jasmind_running():
            os.remove(LOCK)

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
    signal.signal(signal.SIGINT, lambda *_: (stop(), sys.exit(0)))
    try:
        for port in (a.jcli_port, a.smpp_port, a.http_port):
            wait_port(port, 60, proc)
        provision(a)
        print(f"JASMIND PID {proc.pid}", flush=True)
        print(f"SMPP listening on 127.0.0.1:{a.smpp_port}", flush=True)
        print(f"HTTP listening on 127.0.0.1:{a.http_port}", flush=True)
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        stop()


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("setup")
    s.add_argument("dir")
    r = sub.add_parser("run")
    r.add_argument("dir")
    r.add_argument("--upstream-port", type=int, required=True)
    r.add_argument("--upstream-user", default="smppclient1")
    r.add_argument("--upstream-password", default="password")
    r.add_argument("--smpp-port", type=int, default=12775)
    r.add_argument("--http-port", type=int, default=11401)
    r.add_argument("--jcli-port", type=int, default=18990)
    r.add_argument("--smpp-pb-port", type=int, default=14000)
    r.add_argument("--cm-port", type=int, default=18989)
    r.add_argument("--router-port", type=int, default=18988)
    r.add_argument("--interceptor-port", type=int, default=18987)
    r.add_argument("--user", default="bench")
    r.add_argument("--password", default="benchpw")
    a = p.parse_args()
    if a.cmd == "setup":
        setup(a.dir)
    else:
        run(a)


if __name__ == "__main__":
    main()
