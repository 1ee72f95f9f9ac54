#!/usr/bin/env python3
"""A test host for jail's network tests. It runs inside the test's own
network namespace (never on a real network) and logs every connection and
datagram it receives, one line each, so a test can prove that something
never arrived.

    net_server.py LOG CERT KEY READY

TCP (every address of the namespace, IPv4 and IPv6):
  80, 8080  HTTP: answers "hello HOST via http on LOCAL"
  8081      HTTP/1.1 kept alive: every request (Content-Length or chunked
            body read) is logged "http 8081 HOST" and answered
            "hello HOST via keep-alive"; "Upgrade: echo" switches (101)
            to echoing every read back as "echo DATA"
  443       HTTPS with CERT/KEY: "hello HOST via https on LOCAL"
  2222      a protocol where the server speaks first: "BANNER", then echo
  25, 587   SMTP greeting
  3128      an HTTP CONNECT proxy: logs the target, relays to LOCAL:port
UDP 9999: logs each datagram.
UDP 5353: a DNS server that answers every query SERVFAIL (not logged).
Log lines: "tcp PORT LOCAL_ADDRESS" / "udp 9999 LOCAL_ADDRESS" /
"connect TARGET".
"""
import os
import socket
import ssl
import sys
import threading

LOG, CERT, KEY, READY = sys.argv[1:5]
lock = threading.Lock()


def record(line):
    with lock:
        with open(LOG, "a") as f:
            f.write(line + "\n")


def local(conn):
    a = conn.getsockname()[0]
    return a[7:] if a.startswith("::ffff:") else a


def read_head(conn):
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def host_of(head):
    for line in head.split(b"\r\n")[1:]:
        if line.lower().startswith(b"host:"):
            return line[5:].strip().decode(errors="replace")
    return "-"


def http(conn, port, scheme):
    head = read_head(conn)
    body = "hello %s via %s on %s\n" % (host_of(head), scheme, local(conn))
    conn.sendall(("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                  % (len(body), body)).encode())


def keep_alive(conn, port):
    f = conn.makefile("rb")
    while True:
        line = f.readline(65536)
        if not line:
            return
        host, length, chunked, echo = "-", 0, False, False
        while True:
            h = f.readline(65536)
            if h in (b"\r\n", b"\n", b""):
                break
            name, _, value = h.partition(b":")
            name, value = name.strip().lower(), value.strip()
            if name == b"host" and host == "-":
                host = value.decode(errors="replace")
            elif name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                chunked = True
            elif name == b"upgrade" and value.lower() == b"echo":
                echo = True
        if chunked:
            while True:
                size = int(f.readline(65536).split(b";")[0], 16)
                f.read(size + 2) if size else None
                if not size:
                    while f.readline(65536) not in (b"\r\n", b"\n", b""):
                        pass
                    break
        elif length:
            f.read(length)
        record("http %d %s" % (port, host))
        if echo:
            # Switched: no longer HTTP, every read echoed back.
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\n\r\n")
            while True:
                d = f.read1(4096)
                if not d:
                    return
                conn.sendall(b"echo " + d)
        body = "hello %s via keep-alive\n" % host
        conn.sendall(("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                      % (len(body), body)).encode())


def banner(conn, port):
    conn.sendall(b"BANNER\n")
    line = conn.recv(4096)
    conn.sendall(b"echo " + line)


def smtp(conn, port):
    conn.sendall(b"220 test ESMTP\r\n")
    conn.recv(4096)


def relay(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    try:
        b.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def proxy(conn, port):
    head = read_head(conn)
    first = head.split(b"\r\n")[0].decode(errors="replace")
    parts = first.split()
    if len(parts) < 2 or parts[0] != "CONNECT":
        conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
        return
    record("connect " + parts[1])
    tport = int(parts[1].rsplit(":", 1)[1])
    up = socket.create_connection((local(conn), tport))
    conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    t = threading.Thread(target=relay, args=(up, conn), daemon=True)
    t.start()
    relay(conn, up)
    t.join()
    up.close()


def serve(port, handler, tls=None):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", port))
    s.listen(128)

    def one(conn):
        record("tcp %d %s" % (port, local(conn)))
        try:
            if tls:
                conn = tls.wrap_socket(conn, server_side=True)
            handler(conn, port)
        except (OSError, ssl.SSLError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def loop():
        while True:
            c, _ = s.accept()
            threading.Thread(target=one, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()


def udp(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))

    def loop():
        while True:
            _, addr = s.recvfrom(4096)
            record("udp %d %s" % (port, addr[0]))

    threading.Thread(target=loop, daemon=True).start()


def servfail(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))

    def loop():
        while True:
            q, addr = s.recvfrom(4096)
            if len(q) < 12:
                continue
            # The id and question back, QR set, RCODE 2; no other records.
            flags = 0x8000 | (q[2] & 0x79) << 8 | 0x80 | 2
            end = 12
            while end < len(q) and q[end]:
                end += q[end] + 1
            s.sendto(q[:2] + bytes([flags >> 8, flags & 0xff]) + q[4:6] + b"\0" * 6
                     + q[12:end + 5], addr)

    threading.Thread(target=loop, daemon=True).start()


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(CERT, KEY)
serve(80, lambda c, p: http(c, p, "http"))
serve(8080, lambda c, p: http(c, p, "http"))
serve(8081, keep_alive)
serve(443, lambda c, p: http(c, p, "https"), tls=ctx)
serve(2222, banner)
serve(25, smtp)
serve(587, smtp)
serve(3128, proxy)
udp(9999)
servfail(5353)
with open(READY, "w") as f:
    f.write(str(os.getpid()))
threading.Event().wait()
