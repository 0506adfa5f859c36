#!/usr/bin/env python3
"""A TCP proxy that puts a registry a fixed distance away, and counts what crosses it.

Usage: latency-proxy.py --listen PORT --upstream HOST:PORT --one-way-ms D
                        [--route PREFIX=HOST:PORT]... [--tls CERT KEY] --events FILE

Every byte is held D milliseconds in each direction (a round trip costs 2 D), in order, with
no bandwidth limit. A new connection waits one round trip before its first byte goes on (the
TCP handshake), and one more with --tls (a TLS 1.3 handshake: the proxy ends TLS itself, with
ALPN `http/1.1`, and speaks plain HTTP to the upstream). The kernel of the machine the
benchmark runs on has no netem, hence a program.

The proxy reads the HTTP/1.1 framing of both directions (it does not change a byte), so it can
route a request by its path (--route /token=127.0.0.1:PORT puts a token endpoint on the
registry's host, as ghcr.io has it) and write one JSON line per connection and per request to
--events: when the connection was accepted, when each request's first byte arrived from the
client, and when the last byte of its answer was handed to the client. bench/latency.py counts
requests and round-trip waves from them.
"""
import argparse
import asyncio
import json
import socket
import ssl
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--listen", type=int, required=True)
parser.add_argument("--upstream", required=True)
parser.add_argument("--one-way-ms", type=float, required=True)
parser.add_argument("--route", action="append", default=[])
parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
parser.add_argument("--events", required=True)
args = parser.parse_args()

DELAY = args.one_way_ms / 1000.0
RTT = 2 * DELAY
ROUTES = [(prefix, hostport) for prefix, hostport in (r.split("=", 1) for r in args.route)]
events = open(args.events, "a", buffering=1)
next_conn = 0


def emit(**event):
    events.write(json.dumps(event) + "\n")


def no_delay(writer):
    """Each piece goes out when it is written: Nagle's algorithm would hold a small write back
    until the last is acknowledged, and a peer delaying its ACKs adds 40 ms the network
    being emulated does not have."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def split_hostport(hostport):
    host, port = hostport.rsplit(":", 1)
    return host, int(port)


class Framing:
    """Finds where HTTP/1.1 messages start and end in one direction of a connection.

    feed(data) returns a list of (offset, kind, head) where kind is "start" (head: the parsed
    start line and headers) or "end"; offsets are into data."""

    def __init__(self, responses, methods):
        self.responses = responses
        self.methods = methods  # requests' methods, in order, for the answers (HEAD has no body)
        self.buf = b""
        self.state = "head"
        self.left = 0
        self.head = None

    def feed(self, data):
        out = []
        pos = 0
        while pos < len(data):
            if self.state == "head":
                if not self.buf:
                    out.append((pos, "first", None))
                need = data[pos:]
                joined = self.buf + need
                end = joined.find(b"\r\n\r\n")
                if end < 0:
                    self.buf = joined
                    pos = len(data)
                    break
                consumed = end + 4 - len(self.buf)
                head = joined[: end + 4].decode("latin-1")
                self.buf = b""
                pos += consumed
                self.begin(head, out, pos)
            elif self.state == "body":
                take = min(self.left, len(data) - pos)
                pos += take
                self.left -= take
                if self.left == 0:
                    self.finish(out, pos)
            elif self.state == "chunked":
                # chunk-size line, data, CRLF; "0" line then trailers and an empty line
                joined = self.buf + data[pos:]
                line_end = joined.find(b"\r\n")
                if line_end < 0:
                    self.buf = joined
                    pos = len(data)
                    break
                size = int(joined[:line_end].split(b";")[0].strip() or b"0", 16)
                pos += line_end + 2 - len(self.buf)
                self.buf = b""
                if size == 0:
                    self.state = "trailers"
                else:
                    self.state = "chunk-data"
                    self.left = size + 2
            elif self.state == "chunk-data":
                take = min(self.left, len(data) - pos)
                pos += take
                self.left -= take
                if self.left == 0:
                    self.state = "chunked"
            elif self.state == "trailers":
                joined = self.buf + data[pos:]
                line_end = joined.find(b"\r\n")
                if line_end < 0:
                    self.buf = joined
                    pos = len(data)
                    break
                pos += line_end + 2 - len(self.buf)
                self.buf = b""
                if line_end == 0:
                    self.finish(out, pos)
            elif self.state == "close":
                pos = len(data)
        return out

    def begin(self, head, out, pos):
        lines = head.split("\r\n")
        start = lines[0]
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        parsed = {"start": start, "headers": headers}
        out.append((pos, "head", parsed))
        if self.responses:
            status = int(start.split(" ")[1])
            if 100 <= status < 200:
                self.state = "head"  # an interim answer: the real one follows
                return
            method = self.methods.pop(0) if self.methods else "GET"
            if method == "HEAD" or status in (204, 304):
                return self.finish(out, pos)
        if headers.get("transfer-encoding", "").lower().endswith("chunked"):
            self.state = "chunked"
        elif "content-length" in headers:
            self.left = int(headers["content-length"])
            self.state = "body"
            if self.left == 0:
                self.finish(out, pos)
        elif self.responses:
            self.state = "close"
        else:
            self.finish(out, pos)

    def finish(self, out, pos):
        out.append((pos, "end", None))
        self.state = "head"


def looks_like_http(head):
    """Whether the bytes so far can start an HTTP/1.1 request line (`METHOD SP ...`)."""
    method = head.split(b" ", 1)[0]
    return (len(method) <= 16 and method.isalpha() and method.isupper()) if method else True


async def delayed_pipe(queue, writer, on_written):
    """Writes what `queue` holds, each piece DELAY after it arrived."""
    try:
        while True:
            item = await queue.get()
            if item is None:
                break
            arrived, data, marks = item
            wait = arrived + DELAY - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
            for mark in marks:
                on_written(mark)
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def handle(client_reader, client_writer):
    global next_conn
    conn = next_conn
    next_conn += 1
    no_delay(client_writer)
    accepted = time.time()
    emit(type="conn", conn=conn, t=accepted, tls=bool(args.tls))
    # The handshakes a real network makes the client wait for.
    await asyncio.sleep(RTT * (2 if args.tls else 1))

    methods = []  # of the requests sent on, for the framing of their answers
    requests = []  # open request records, oldest first
    to_client = asyncio.Queue()
    upstreams = {}  # hostport -> (queue to it, task)

    def answered(mark):
        kind, record = mark
        if kind == "end":
            record["done"] = time.time()
            emit(type="request", conn=conn, **record)

    client_task = asyncio.ensure_future(delayed_pipe(to_client, client_writer, answered))

    async def from_upstream(reader, framing):
        try:
            while True:
                data = await reader.read(1 << 16)
                if not data:
                    break
                marks = []
                for _, kind, head in framing.feed(data):
                    if kind == "head" and requests and not head["start"].split(" ")[1].startswith("1"):
                        requests[0]["status"] = int(head["start"].split(" ")[1])
                    if kind == "end" and requests:
                        marks.append(("end", requests.pop(0)))
                await to_client.put((time.monotonic(), data, marks))
        except (ConnectionError, OSError):
            pass
        await to_client.put(None)

    async def upstream_for(hostport):
        if hostport not in upstreams:
            reader, writer = await asyncio.open_connection(*split_hostport(hostport))
            no_delay(writer)
            queue = asyncio.Queue()
            task = asyncio.ensure_future(delayed_pipe(queue, writer, lambda mark: None))
            asyncio.ensure_future(from_upstream(reader, Framing(True, methods)))
            upstreams[hostport] = (queue, task)
        return upstreams[hostport][0]

    framing = Framing(False, None)
    current = None  # where the request being read goes
    pending = b""  # the head of a request whose route is not known yet
    routing = False
    try:
        while True:
            data = await client_reader.read(1 << 16)
            if not data:
                break
            now = time.monotonic()
            started = time.time()
            last = 0
            for pos, kind, head in framing.feed(data):
                if kind == "first":
                    if pos > last and current is not None:
                        await current.put((now, data[last:pos], []))
                    last = pos
                    routing = True
                    requests.append({"start": started})
                elif kind == "head":
                    method, path = head["start"].split(" ")[:2]
                    requests[-1].update(method=method, path=path.split("?")[0])
                    methods.append(method)
                    hostport = args.upstream
                    for prefix, route in ROUTES:
                        if path.startswith(prefix):
                            hostport = route
                    current = await upstream_for(hostport)
                    await current.put((now, pending + data[last:pos], []))
                    pending = b""
                    last = pos
                    routing = False
            rest = data[last:]
            if routing and not looks_like_http(pending + rest):
                # Not HTTP (a client trying TLS on a plain port first): passed on as it is,
                # for the registry to refuse, and no longer read as HTTP.
                requests.pop()
                current = await upstream_for(args.upstream)
                await current.put((now, pending + rest, []))
                pending, routing = b"", False
                framing.state = "close"
            elif routing:
                pending += rest
            elif rest and current is not None:
                await current.put((now, rest, []))
    except (ConnectionError, OSError):
        pass
    for queue, _ in upstreams.values():
        await queue.put(None)
    await asyncio.gather(*(task for _, task in upstreams.values()), return_exceptions=True)
    if not upstreams:
        await to_client.put(None)
    await client_task


async def main():
    context = None
    if args.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.load_cert_chain(*args.tls)
        context.set_alpn_protocols(["http/1.1"])
    server = await asyncio.start_server(handle, "127.0.0.1", args.listen, ssl=context, backlog=256)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


try:
    asyncio.run(main())
except KeyboardInterrupt:
    sys.exit(0)
