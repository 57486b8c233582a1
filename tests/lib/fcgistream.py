"""Raw FastCGI clients of GET /tasks/stream for the stream bounds (tests/e2e/stream-bounds.sh,
bench/soak.sh): many streams at once on lmtasks-fcgi's socket, reading as fast as they can,
not reading at all, or breaking the protocol.  Every wait is a hang guard (GUARD seconds,
default 60), never a measure of speed.

  fcgistream.py read SOCK N PATH UNTIL [LAST_ID [READY]]
        N streams (with Last-Event-ID LAST_ID unless "-"), read as fast as they come until
        each has had the event with id UNTIL or ended; READY is created once all N have
        their first bytes.  Prints one line per stream: "events E first F last L ordered O
        ended D" (O 1: every id larger than the one before; D 1: the responder ended it).
  fcgistream.py hold SOCK N PATH READY [GO]
        N streams that read their first bytes, create READY, then read nothing; once the
        file GO exists, each reads until the responder closes it.  Prints "closed K" (K of
        the N ended by the responder) when GO is given, else holds until killed.
  fcgistream.py extra SOCK PATH
        a stream, then after its first bytes an empty FCGI_STDIN again and one byte more;
        prints "closed" when the responder closes the connection, "open" after GUARD s.
  fcgistream.py again SOCK PATH NEXT
        a stream on a kept connection; after its first bytes, FCGI_ABORT_REQUEST and a new
        GET NEXT in one write; prints the new request's status line ("Status: ...") once
        its FCGI_END_REQUEST came, or "closed" when the responder closes the connection.
  fcgistream.py byte SOCK PATH READY SEND GO
        a stream that reads its first bytes, creates READY and reads nothing; once SEND
        exists and output waiting in its socket has stopped growing for 0.5 s (the
        responder's own buffer holds the rest), it sends one byte (part of a record header)
        and creates SEND.sent; once GO exists, it closes.  Prints "done".
"""
import fcntl
import os
import selectors
import socket
import struct
import sys
import termios
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fcgi import connect, nv, rec  # noqa: E402

GUARD = float(os.environ.get("GUARD", "60"))


def stream_request(path, last_id=None, rid=1, keep=0):
    pairs = [("REQUEST_METHOD", "GET"), ("REQUEST_URI", path), ("SCRIPT_NAME", ""),
             ("QUERY_STRING", path.partition("?")[2]), ("SERVER_PROTOCOL", "HTTP/1.1")]
    if last_id is not None:
        pairs.append(("HTTP_LAST_EVENT_ID", last_id))
    params = b"".join(nv(k.encode(), v.encode()) for k, v in pairs)
    return (rec(1, rid, struct.pack(">HB5x", 1, keep)) + rec(4, rid, params) + rec(4, rid) +
            rec(5, rid))


class Stream:
    """One stream's parse state: FastCGI records, then the event-stream text."""

    def __init__(self, sock):
        self.s = connect(sock, GUARD)
        self.buf = b""
        self.text = b""
        self.head = False
        self.ids = 0
        self.first = self.last = -1
        self.ordered = 1
        self.ended = 0

    def feed(self, data):
        self.buf += data
        while len(self.buf) >= 8:
            _, t, _, cl, pl, _ = struct.unpack(">BBHHBB", self.buf[:8])
            if len(self.buf) < 8 + cl + pl:
                break
            content, self.buf = self.buf[8:8 + cl], self.buf[8 + cl + pl:]
            if t == 6:
                self.text += content
            elif t == 3:
                self.ended = 1
        if not self.head and b"\r\n\r\n" in self.text:
            self.text = self.text.split(b"\r\n\r\n", 1)[1]
            self.head = True
        if not self.head:
            return
        while b"\n\n" in self.text:
            block, self.text = self.text.split(b"\n\n", 1)
            for line in block.split(b"\n"):
                if line.startswith(b"id: "):
                    i = int(line[4:])
                    if i <= self.last:
                        self.ordered = 0
                    if self.first < 0:
                        self.first = i
                    self.last = i
                    self.ids += 1


def open_streams(sock, n, path, last_id):
    out = []
    for _ in range(n):
        st = Stream(sock)
        st.s.sendall(stream_request(path, last_id))
        st.s.setblocking(False)
        out.append(st)
    return out


def wait_started(streams, end):
    """Reads until every stream has its header block; False past the guard."""
    sel = selectors.DefaultSelector()
    for st in streams:
        sel.register(st.s, selectors.EVENT_READ, st)
    left = sum(1 for st in streams if not st.head)
    while left and time.monotonic() < end:
        for key, _ in sel.select(1):
            st = key.data
            if st.head:
                continue
            try:
                d = st.s.recv(4096)
            except BlockingIOError:
                continue
            except ConnectionError:
                d = b""
            if not d:
                st.ended = 1
                st.head = True
            else:
                st.feed(d)
            if st.head:
                sel.unregister(st.s)
                left -= 1
    sel.close()
    return left == 0


def touch(name):
    open(name, "w").close()


def cmd_read(sock, n, path, until, last_id, ready):
    end = time.monotonic() + GUARD
    streams = open_streams(sock, n, path, last_id)
    wait_started(streams, end)
    if ready:
        touch(ready)
    sel = selectors.DefaultSelector()
    for st in streams:
        if not st.ended and st.last < until:
            sel.register(st.s, selectors.EVENT_READ, st)
    left = len(sel.get_map())
    while left and time.monotonic() < end:
        for key, _ in sel.select(1):
            st = key.data
            try:
                d = st.s.recv(1 << 16)
            except BlockingIOError:
                continue
            except ConnectionError:
                d = b""
            if d:
                st.feed(d)
            else:
                st.ended = 1
            if st.ended or st.last >= until:
                sel.unregister(st.s)
                left -= 1
    for st in streams:
        print("events %d first %d last %d ordered %d ended %d" %
              (st.ids, st.first, st.last, st.ordered, st.ended))


def drain_until_closed(st, end):
    st.s.setblocking(True)
    while time.monotonic() < end:
        st.s.settimeout(max(0.1, end - time.monotonic()))
        try:
            d = st.s.recv(1 << 16)
        except socket.timeout:
            return False
        except ConnectionError:
            return True
        if not d:
            return True
    return False


def cmd_hold(sock, n, path, ready, go):
    streams = open_streams(sock, n, path, None)
    wait_started(streams, time.monotonic() + GUARD)
    touch(ready)
    if not go:
        while True:
            time.sleep(3600)
    while not os.path.exists(go):
        time.sleep(0.05)
    end = time.monotonic() + GUARD
    print("closed %d" % sum(1 for st in streams if drain_until_closed(st, end)))


def cmd_extra(sock, path):
    st = open_streams(sock, 1, path, None)[0]
    wait_started([st], time.monotonic() + GUARD)
    st.s.setblocking(True)
    st.s.sendall(rec(5, 1) + b"\x01")
    print("closed" if drain_until_closed(st, time.monotonic() + GUARD) else "open")


def cmd_again(sock, path, nxt):
    st = Stream(sock)
    st.s.sendall(stream_request(path, None, 1, 1))
    st.s.setblocking(False)
    wait_started([st], time.monotonic() + GUARD)
    st.s.setblocking(True)
    st.s.sendall(rec(2, 1) + stream_request(nxt, None, 1, 1))
    buf, ends, out, end = st.buf, 0, b"", time.monotonic() + GUARD
    while ends < 2 and time.monotonic() < end:
        while len(buf) >= 8 and ends < 2:
            _, t, _, cl, pl, _ = struct.unpack(">BBHHBB", buf[:8])
            if len(buf) < 8 + cl + pl:
                break
            content, buf = buf[8:8 + cl], buf[8 + cl + pl:]
            ends += t == 3
            if t == 6 and ends == 1:
                out += content
        if ends == 2:
            break
        st.s.settimeout(max(0.1, end - time.monotonic()))
        try:
            d = st.s.recv(1 << 16)
        except (ConnectionError, socket.timeout):
            d = b""
        if not d:
            break
        buf += d
    print(out.split(b"\r\n", 1)[0].decode() if ends == 2 else "closed")


def wait_file(name, end, cond=lambda: True):
    while not (os.path.exists(name) and cond()) and time.monotonic() < end:
        time.sleep(0.05)


def queued(s):
    """Bytes waiting in the socket for us to read (SIOCINQ)."""
    return struct.unpack("i", fcntl.ioctl(s.fileno(), termios.FIONREAD, b"\0" * 4))[0]


def cmd_byte(sock, path, ready, send, go):
    st = open_streams(sock, 1, path, None)[0]
    wait_started([st], time.monotonic() + GUARD)
    st.s.setblocking(True)
    touch(ready)
    end = time.monotonic() + GUARD
    wait_file(send, end)
    last, same = -1, 0
    while same < 10 and time.monotonic() < end:
        n = queued(st.s)
        same = same + 1 if n == last and n > 0 else 0
        last = n
        time.sleep(0.05)
    st.s.sendall(b"\x01")
    touch(send + ".sent")
    wait_file(go, end)
    st.s.close()
    print("done")


def main():
    cmd, sock = sys.argv[1], sys.argv[2]
    a = sys.argv[3:]
    if cmd == "read":
        last_id = a[3] if len(a) > 3 and a[3] != "-" else None
        cmd_read(sock, int(a[0]), a[1], int(a[2]), last_id, a[4] if len(a) > 4 else None)
    elif cmd == "hold":
        cmd_hold(sock, int(a[0]), a[1], a[2], a[3] if len(a) > 3 else None)
    elif cmd == "extra":
        cmd_extra(sock, a[0])
    elif cmd == "again":
        cmd_again(sock, a[0], a[1])
    elif cmd == "byte":
        cmd_byte(sock, a[0], a[1], a[2], a[3])
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
