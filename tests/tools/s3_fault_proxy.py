#!/usr/bin/env python3
"""A fault-injecting HTTP/1.1 proxy for S3 tests and benchmarks, on 127.0.0.1 only.

Sits between an S3 client (respawn, aws, rclone, ...) and an S3 server (radosgw from
scripts/s3-server.sh): point the client's endpoint at the proxy. Requests and responses pass
byte for byte (the Host header included, so SigV4 signatures still verify), with keep-alive,
Content-Length and chunked bodies of any size, and Expect: 100-continue. Each client connection
gets its own upstream connection.

Faults come from rules (JSON), given with --rules at start or replaced at run time through the
control endpoint. A rule:

  {"fault": KIND, ...match..., ...trigger..., ...parameters...}

  KIND        error     answer STATUS (default 500) with an S3 <Error> body of CODE (default
                        InternalError for 500, ServiceUnavailable for 503) instead of the server
              slowdown  error with status 503 and code SlowDown
              reset     reset the client connection (TCP RST)
              truncate  send the response head (its Content-Length unchanged), then only KEEP
                        bytes of the body, then close the connection
              stall     hold the response SECONDS before sending it (with BODY_BYTES: send the
                        head and that many body bytes first, then hold)
  when        "before": act before the request reaches the server (the default for error,
              slowdown and reset); "after": forward the request, let the server answer, then act
              on the answer (the default for truncate and stall; with error and reset it makes
              the ambiguous case: the write landed, the client sees a failure)
  method      regex the request method must match fully (e.g. "PUT", "GET|HEAD")
  path        regex searched in the request target (path and query, as sent: e.g. "partNumber=2",
              "uploads", "^/bucket/key$")
  headers     {"name": regex searched in that header's value}; a missing header never matches
  after       let the first AFTER matching requests pass (default 0)
  times       fire at most TIMES times (default: unlimited; 1 when "nth" is given)
  nth         fire on the Nth matching request only (after = nth - 1, times = 1)
  rate        probability of firing on a matching request (default 1), from a seeded generator
  seconds     stall: how long to hold (default 5); with "hold" below, not needed
  keep        truncate: body bytes to send (an integer), or a fraction of the body when < 1
              (default 0.5)
  body_bytes  stall: body bytes sent before holding (default: hold before the status line)
  hold        a gate name: the matching request waits (before anything else happens to it)
              until the gate is released through the control endpoint; tests use it to order
              events across clients deterministically

Rules are tried in order; each counts the requests that match it, the first one that fires
acts, the others let the request pass. Every request waits --latency-ms (or "latency_ms" in
the rules document) before it is forwarded: a fixed round trip to emulate a remote region.

Control endpoint (on the proxy's own port; S3 bucket names cannot start with "_"):
  GET  /__fault__/stats            JSON: requests, rules with their matched/fired counts, held
                                   requests per gate, the last 500 fault events
  PUT  /__fault__/rules            body {"rules": [...], "latency_ms": N, "seed": N}: replaces the
                                   rules, resets counters and events, closes every gate
  POST /__fault__/release/GATE     releases GATE (requests waiting there go on; later ones pass)

Usage:
  s3_fault_proxy.py --upstream http://127.0.0.1:PORT [--listen-port 0] [--port-file FILE]
                    [--latency-ms MS] [--rules JSON|@FILE] [--seed N] [--log FILE]
                    [--exit-with-parent]
Prints "s3_fault_proxy listening on http://127.0.0.1:PORT" when ready and writes PORT to
--port-file (atomically). Stop it with SIGTERM or SIGINT.

Written by hand (Python standard library only). Debian's mitmproxy could
script some of these faults, but it is an inspection tool: it parses and re-serializes every
message and holds bodies in memory unless told to stream them (and a streamed body cannot be
answered with a cut-short copy of itself), it would pull a large dependency tree into CI, and a
proxy in the benchmarks must stay out of the way of GiB transfers. What is needed here (exact
bytes through, RST at a chosen moment, a body cut after N bytes under its promised
Content-Length, gates to order events across clients) is small enough to own.
"""

import argparse
import json
import os
import random
import re
import select
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse

CONTROL_PREFIX = b"/__fault__/"
MAX_HEAD = 64 * 1024
BUFFER = 1 << 20
REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout", 429: "Too Many Requests", 400: "Bad Request",
           403: "Forbidden", 404: "Not Found"}
DEFAULT_CODES = {500: "InternalError", 503: "ServiceUnavailable", 502: "BadGateway",
                 504: "GatewayTimeout", 429: "SlowDown"}


class ProtocolError(Exception):
    pass


class Closed(Exception):
    """The peer closed the connection (cleanly, between messages, or in the middle of one)."""


def log(msg):
    if LOG is not None:
        LOG.write("%.3f %s\n" % (time.time(), msg))
        LOG.flush()


LOG = None


class Stream:
    """A socket with a read buffer."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def fill(self):
        data = self.sock.recv(BUFFER)
        if not data:
            raise Closed()
        self.buf += data

    def read_head(self):
        """Bytes up to and including the blank line that ends a message head."""
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self.buf[:end + 4])
                del self.buf[:end + 4]
                return head
            if len(self.buf) > MAX_HEAD:
                raise ProtocolError("message head over %d bytes" % MAX_HEAD)
            self.fill()

    def read_line(self):
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buf[:end + 2])
                del self.buf[:end + 2]
                return line
            if len(self.buf) > MAX_HEAD:
                raise ProtocolError("line over %d bytes" % MAX_HEAD)
            self.fill()

    def read_some(self, limit):
        if not self.buf:  # straight from the socket: no copy through the buffer
            data = self.sock.recv(min(limit, BUFFER))
            if not data:
                raise Closed()
            return data
        n = min(limit, len(self.buf))
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data


class Head:
    """A parsed request or response head (the raw bytes are kept and forwarded as they are)."""

    def __init__(self, raw):
        self.raw = raw
        lines = raw[:-4].split(b"\r\n")
        self.start = lines[0].decode("latin-1")
        self.headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise ProtocolError("bad header line %r" % line[:80])
            self.headers.append((name.decode("latin-1").strip().lower(),
                                 value.decode("latin-1").strip()))

    def get(self, name):
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def tokens(self, name):
        return [t.strip().lower() for k, v in self.headers if k == name for t in v.split(",")]

    def body_framing(self, is_response=False, request_method="", status=0):
        """("length", n), ("chunked", None), ("close", None) or ("none", None)."""
        if is_response and (request_method == "HEAD" or 100 <= status < 200 or
                            status in (204, 304)):
            return ("none", None)
        if "chunked" in self.tokens("transfer-encoding"):
            return ("chunked", None)
        length = self.get("content-length")
        if length is not None:
            return ("length", int(length))
        return ("close", None) if is_response else ("none", None)


def send_all(sock, data):
    sock.sendall(data)


def body_pieces(src, framing):
    """Yields the raw bytes of a body read from Stream `src` (chunked framing included, as
    sent), piece by piece, until the body ends."""
    kind, length = framing
    if kind == "length":
        left = length
        while left > 0:
            data = src.read_some(min(left, BUFFER))
            left -= len(data)
            yield data
    elif kind == "close":
        while True:
            try:
                yield src.read_some(BUFFER)
            except Closed:
                return
    elif kind == "chunked":
        while True:
            line = src.read_line()
            yield line
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:  # trailers, then the blank line
                    trailer = src.read_line()
                    yield trailer
                    if trailer == b"\r\n":
                        return
            left = size + 2  # the data and its CRLF
            while left > 0:
                data = src.read_some(min(left, BUFFER))
                left -= len(data)
                yield data


class Body:
    """A body being relayed; send() moves raw bytes on, optionally only up to a count."""

    def __init__(self, src, framing):
        self.pieces = body_pieces(src, framing)
        self.pending = b""
        self.sent = 0
        self.complete = False

    def send(self, dst, limit=None):
        """Sends (to socket `dst`, or nowhere when None) until the body ends or `limit` bytes of
        it went out in total. Returns whether the body ended."""
        while limit is None or self.sent < limit:
            if not self.pending:
                try:
                    self.pending = next(self.pieces)
                except StopIteration:
                    self.complete = True
                    return True
            n = len(self.pending) if limit is None else min(len(self.pending), limit - self.sent)
            if dst is not None:
                dst.sendall(self.pending[:n])
            self.pending = self.pending[n:]
            self.sent += n
        return False


    def at_end(self):
        """Whether every byte of the body went out (reads ahead one piece to tell)."""
        if not self.complete and not self.pending:
            try:
                self.pending = next(self.pieces)
            except StopIteration:
                self.complete = True
        return self.complete


def copy_body(src, dst, framing):
    """Relays a whole body from Stream `src` to socket `dst` (None: discards it)."""
    Body(src, framing).send(dst)


def reset(sock):
    """Closes `sock` with a TCP RST instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class Rule:
    KINDS = ("error", "slowdown", "reset", "truncate", "stall")

    def __init__(self, spec, index):
        if not isinstance(spec, dict):
            raise ValueError("rule %d is not an object" % index)
        known = {"fault", "when", "method", "path", "headers", "after", "times", "nth", "rate",
                 "status", "code", "message", "seconds", "keep", "body_bytes", "hold", "name"}
        unknown = set(spec) - known
        if unknown:
            raise ValueError("rule %d: unknown field(s) %s" % (index, ", ".join(sorted(unknown))))
        self.spec = spec
        self.name = spec.get("name", "rule%d" % index)
        self.fault = spec.get("fault")
        if self.fault not in self.KINDS:
            raise ValueError("rule %d: fault must be one of %s" % (index, ", ".join(self.KINDS)))
        default_when = "after" if self.fault in ("truncate", "stall") else "before"
        self.when = spec.get("when", default_when)
        if self.when not in ("before", "after"):
            raise ValueError("rule %d: when must be before or after" % index)
        if self.fault == "truncate" and self.when != "after":
            raise ValueError("rule %d: truncate acts on the server's answer (when = after)" % index)
        self.method = re.compile(spec["method"]) if "method" in spec else None
        self.path = re.compile(spec["path"]) if "path" in spec else None
        self.headers = {k.lower(): re.compile(v) for k, v in spec.get("headers", {}).items()}
        if "nth" in spec:
            self.after = int(spec["nth"]) - 1
            self.times = int(spec.get("times", 1))
        else:
            self.after = int(spec.get("after", 0))
            self.times = spec.get("times")
            self.times = None if self.times is None else int(self.times)
        self.rate = float(spec.get("rate", 1.0))
        if self.fault == "slowdown":
            self.status, self.code = 503, "SlowDown"
        else:
            self.status = int(spec.get("status", 500))
            self.code = spec.get("code", DEFAULT_CODES.get(self.status, "InternalError"))
        self.message = spec.get("message", "injected by s3_fault_proxy")
        self.seconds = float(spec.get("seconds", 5))
        self.keep = spec.get("keep", 0.5)
        self.body_bytes = spec.get("body_bytes")
        self.hold = spec.get("hold")
        self.matched = 0
        self.fired = 0

    def matches(self, method, target, head):
        if self.method is not None and not self.method.fullmatch(method):
            return False
        if self.path is not None and not self.path.search(target):
            return False
        for name, pattern in self.headers.items():
            value = head.get(name)
            if value is None or not pattern.search(value):
                return False
        return True

    def describe(self):
        d = dict(self.spec)
        d.update(name=self.name, matched=self.matched, fired=self.fired)
        return d


class State:
    def __init__(self, latency_ms, seed):
        self.lock = threading.Lock()
        self.rules = []
        self.latency_ms = latency_ms
        self.rng = random.Random(seed)
        self.requests = 0
        self.events = []
        self.gates = {}  # name -> threading.Event
        self.held = {}   # name -> requests that waited there

    def load(self, doc):
        if not isinstance(doc, dict):
            raise ValueError('the rules document must be an object: {"rules": [...]}')
        unknown = set(doc) - {"rules", "latency_ms", "seed"}
        if unknown:
            raise ValueError("unknown field(s) %s" % ", ".join(sorted(unknown)))
        rules = [Rule(spec, i) for i, spec in enumerate(doc.get("rules", []))]
        with self.lock:
            for gate in self.gates.values():
                gate.set()  # nobody stays stuck behind a gate of the old rules
            self.rules = rules
            self.gates = {r.hold: threading.Event() for r in rules if r.hold}
            self.held = {}
            if "latency_ms" in doc:
                self.latency_ms = float(doc["latency_ms"])
            if "seed" in doc:
                self.rng = random.Random(doc["seed"])
            self.requests = 0
            self.events = []

    def pick(self, method, target, head):
        """The rule that fires for this request, or None."""
        with self.lock:
            self.requests += 1
            chosen = None
            for rule in self.rules:
                if not rule.matches(method, target, head):
                    continue
                rule.matched += 1
                if chosen is not None or rule.matched <= rule.after:
                    continue
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                if rule.rate < 1.0 and self.rng.random() >= rule.rate:
                    continue
                rule.fired += 1
                chosen = rule
            return chosen

    def unfire(self, rule):
        with self.lock:
            rule.fired -= 1

    def event(self, rule, method, target, what):
        with self.lock:
            self.events.append({"rule": rule.name, "fault": rule.fault, "method": method,
                                "target": target, "what": what})
            del self.events[:-500]
        log("%s %s %s: %s" % (rule.name, method, target, what))

    def wait_gate(self, name):
        with self.lock:
            gate = self.gates.setdefault(name, threading.Event())
            self.held[name] = self.held.get(name, 0) + 1
        gate.wait()

    def release(self, name):
        with self.lock:
            self.gates.setdefault(name, threading.Event()).set()

    def stats(self):
        with self.lock:
            return {"requests": self.requests, "latency_ms": self.latency_ms,
                    "rules": [r.describe() for r in self.rules], "held": dict(self.held),
                    "events": list(self.events)}


def error_response(rule, method, target, request_id):
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>'
            "<Resource>%s</Resource><RequestId>%s</RequestId></Error>" %
            (rule.code, rule.message, target.split("?")[0], request_id)).encode()
    head = ("HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n"
            "x-amz-request-id: %s\r\n\r\n" % (rule.status, REASONS.get(rule.status, "Error"),
                                               len(body), request_id)).encode()
    return head if method == "HEAD" else head + body


def json_response(status, doc, close=False):
    body = (json.dumps(doc, indent=1) + "\n").encode()
    return ("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n" %
            (status, "OK" if status == 200 else "Error", len(body),
             "Connection: close\r\n" if close else "")).encode() + body


class Handler(socketserver.BaseRequestHandler):
    def setup(self):
        self.client = Stream(self.request)
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.upstream = None
        self.serial = 0

    def finish(self):
        self.close_upstream()

    # --- upstream connection -----------------------------------------------------------------

    def close_upstream(self):
        if self.upstream is not None:
            try:
                self.upstream.sock.close()
            except OSError:
                pass
            self.upstream = None

    def connect_upstream(self):
        if self.upstream is not None:
            # A server closes idle keep-alive connections: notice it before reusing one.
            readable, _, _ = select.select([self.upstream.sock], [], [], 0)
            if readable and not self.upstream.buf:
                try:
                    peek = self.upstream.sock.recv(1, socket.MSG_PEEK)
                except OSError:
                    peek = b""
                if not peek:
                    self.close_upstream()
        if self.upstream is None:
            sock = socket.create_connection(self.server.upstream_addr, timeout=None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.upstream = Stream(sock)
        return self.upstream

    # --- main loop ----------------------------------------------------------------------------

    def handle(self):
        try:
            while True:
                try:
                    head = Head(self.client.read_head())
                except Closed:
                    return
                if not self.one_request(head):
                    return
        except (Closed, ConnectionError, BrokenPipeError, ProtocolError, OSError) as e:
            log("connection %s ended: %r" % (self.client_address, e))
            try:
                self.request.close()
            except OSError:
                pass

    def one_request(self, head):
        """Handles one request; False when the client connection is done."""
        parts = head.start.split(" ")
        if len(parts) != 3:
            raise ProtocolError("bad request line %r" % head.start[:80])
        method, target = parts[0], parts[1]
        if target.encode("latin-1").startswith(CONTROL_PREFIX):
            return self.control(method, target, head)
        state = self.server.state
        self.serial += 1
        request_id = "fault-%d-%d" % (threading.get_ident() % 100000, self.serial)
        framing = head.body_framing()
        expect_continue = "100-continue" in head.tokens("expect")
        closing = "close" in head.tokens("connection")

        rule = state.pick(method, target, head)
        if rule is not None and rule.hold:
            state.event(rule, method, target, "held at gate %s" % rule.hold)
            state.wait_gate(rule.hold)
        if state.latency_ms > 0:
            time.sleep(state.latency_ms / 1000.0)

        if rule is not None and rule.when == "before":
            if rule.fault == "reset":
                state.event(rule, method, target, "reset before forwarding")
                reset(self.request)
                return False
            if rule.fault == "stall":
                state.event(rule, method, target, "stalled %.1f s before forwarding" % rule.seconds)
                time.sleep(rule.seconds)
                rule = None  # then forward as usual
            else:  # error, slowdown
                state.event(rule, method, target, "answered %d %s" % (rule.status, rule.code))
                if expect_continue and framing[0] != "none":
                    # The client waits for 100 Continue before the body: answer, then close.
                    send_all(self.request, error_response(rule, method, target, request_id))
                    return False
                copy_body(self.client, None, framing)
                send_all(self.request, error_response(rule, method, target, request_id))
                return not closing

        # Forward the request.
        up = self.connect_upstream()
        try:
            send_all(up.sock, head.raw)
            if expect_continue and framing[0] != "none":
                interim = Head(up.read_head())
                status = int(interim.start.split(" ")[1])
                if status != 100:  # a final answer before the body: relay it, then close
                    send_all(self.request, interim.raw)
                    copy_body(up, self.request,
                              interim.body_framing(True, method, status))
                    self.close_upstream()
                    return False
                send_all(self.request, interim.raw)
            copy_body(self.client, up.sock, framing)
            while True:  # skip (relay) interim answers
                resp = Head(up.read_head())
                status = int(resp.start.split(" ")[1])
                if status >= 200 or status == 101:
                    break
                send_all(self.request, resp.raw)
        except (Closed, ConnectionError, OSError) as e:
            # The server went away mid-request: the client sees the connection fail, as it would
            # without the proxy.
            log("upstream failed during %s %s: %r" % (method, target, e))
            self.close_upstream()
            reset(self.request)
            return False
        resp_framing = resp.body_framing(True, method, status)
        upstream_done = ("close" in resp.tokens("connection") or resp_framing[0] == "close")

        if rule is None:
            send_all(self.request, resp.raw)
            copy_body(up, self.request, resp_framing)
        elif rule.fault in ("error", "slowdown", "reset"):
            copy_body(up, None, resp_framing)  # the server did the work; the client never knows
            if upstream_done:
                self.close_upstream()
            if rule.fault == "reset":
                state.event(rule, method, target, "reset after the server answered %d" % status)
                reset(self.request)
                return False
            state.event(rule, method, target, "answered %d %s after the server answered %d" %
                        (rule.status, rule.code, status))
            send_all(self.request, error_response(rule, method, target, request_id))
            return not closing
        elif rule.fault == "truncate":
            total = {"length": resp_framing[1], "none": 0}.get(resp_framing[0])
            body = Body(up, resp_framing)
            keep = rule.keep
            if isinstance(keep, float) and keep < 1:
                if total is None:
                    # Chunked (or ended by close): read it all to learn its length; such bodies
                    # are small XML documents.
                    raw = b"".join(body.pieces)
                    body = Body(Stream(None), ("none", None))
                    body.pending, total = raw, len(raw)
                keep = int(total * keep)
            send_all(self.request, resp.raw)
            body.send(self.request, int(keep))
            if body.at_end():
                # Nothing left to cut (an empty or short body): the answer went out whole. The
                # rule did not act, so a later request gets it.
                state.unfire(rule)
                state.event(rule, method, target, "could not truncate a %d-byte body" % body.sent)
            else:
                state.event(rule, method, target, "truncated the body to %d of %s bytes" %
                            (body.sent, total if total is not None else "?"))
                self.close_upstream()
                self.request.close()
                return False
        elif rule.fault == "stall":
            if rule.body_bytes:
                send_all(self.request, resp.raw)
                body = Body(up, resp_framing)
                body.send(self.request, int(rule.body_bytes))
                state.event(rule, method, target, "stalled %.1f s after %d body bytes" %
                            (rule.seconds, body.sent))
                time.sleep(rule.seconds)
                body.send(self.request)
            else:
                state.event(rule, method, target, "stalled the answer %.1f s" % rule.seconds)
                time.sleep(rule.seconds)
                send_all(self.request, resp.raw)
                copy_body(up, self.request, resp_framing)
        if upstream_done:
            self.close_upstream()
            return False
        return not closing

    # --- control endpoint ---------------------------------------------------------------------

    def control(self, method, target, head):
        state = self.server.state
        body = b""
        framing = head.body_framing()
        if framing[0] == "length":
            while len(body) < framing[1]:
                body += self.client.read_some(framing[1] - len(body))
        elif framing[0] == "chunked":
            raise ProtocolError("send control bodies with Content-Length")
        path = urllib.parse.urlsplit(target).path[len(CONTROL_PREFIX):]
        try:
            if method == "GET" and path == "stats":
                reply = json_response(200, state.stats())
            elif method in ("PUT", "POST") and path == "rules":
                state.load(json.loads(body.decode() or "{}"))
                log("rules replaced: %s" % body.decode())
                reply = json_response(200, state.stats())
            elif method == "POST" and path.startswith("release/"):
                state.release(path[len("release/"):])
                reply = json_response(200, {"released": path[len("release/"):]})
            else:
                reply = json_response(404, {"error": "unknown control request %s %s" %
                                            (method, target)})
        except (ValueError, re.error) as e:
            reply = json_response(400, {"error": str(e)})
        send_all(self.request, reply)
        return "close" not in head.tokens("connection")


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def loopback_address(url):
    parts = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
    if parts.scheme != "http":
        raise SystemExit("s3_fault_proxy: --upstream must be http://127.0.0.1:PORT (got %s)" % url)
    host = parts.hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("s3_fault_proxy: the upstream must be on this machine (127.0.0.1), "
                         "not %s" % host)
    if parts.port is None:
        raise SystemExit("s3_fault_proxy: --upstream needs a port: http://127.0.0.1:PORT")
    return ("127.0.0.1" if host == "localhost" else host, parts.port)


def main():
    global LOG
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--upstream", required=True, help="http://127.0.0.1:PORT of the S3 server")
    p.add_argument("--listen-port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    p.add_argument("--port-file", help="write the listening port here once ready")
    p.add_argument("--latency-ms", type=float, default=0.0,
                   help="added to every request before it is forwarded")
    p.add_argument("--rules", default="", help='rules document as JSON, or @FILE')
    p.add_argument("--seed", type=int, default=1, help="seed of the rate generator")
    p.add_argument("--log", help="append one line per fault and connection error here")
    p.add_argument("--exit-with-parent", action="store_true",
                   help="exit when the process that started the proxy ends (a test that "
                        "crashed or was killed leaves no proxy behind)")
    args = p.parse_args()
    if args.exit_with_parent:
        parent = os.getppid()

        def watch_parent():
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(0)

        threading.Thread(target=watch_parent, daemon=True).start()

    if args.log:
        LOG = open(args.log, "a", encoding="utf-8")
    state = State(args.latency_ms, args.seed)
    if args.rules:
        text = args.rules
        if text.startswith("@"):
            with open(text[1:], encoding="utf-8") as f:
                text = f.read()
        try:
            state.load(json.loads(text))
        except (ValueError, re.error) as e:
            raise SystemExit("s3_fault_proxy: bad --rules: %s" % e)

    server = Server(("127.0.0.1", args.listen_port), Handler)
    server.state = state
    server.upstream_addr = loopback_address(args.upstream)
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    print("s3_fault_proxy listening on http://127.0.0.1:%d (upstream http://%s:%d)" %
          (port, server.upstream_addr[0], server.upstream_addr[1]), flush=True)

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever(poll_interval=0.5)
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
