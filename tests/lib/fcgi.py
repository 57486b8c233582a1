"""A raw FastCGI client for the hostile-peer tests (tests/e2e/hostile.sh, tests/e2e/writer.sh,
bench/soak.sh): it speaks the protocol byte by byte at lmtasks-fcgi's or lmtasks-writer's
socket, well or badly on purpose.

  fcgi.py get SOCK PATH [METHOD [KEY]]
                                   one request (GET, no key); prints "STATUS SECONDS"
  fcgi.py answer SOCK PATH METHOD [KEY]
                                   one request; prints the answer, headers and body
  fcgi.py crafted SOCK KIND        a hostile record (KIND: overflow, huge, past_end,
                                   version, many); prints how the connection ended
  fcgi.py slow SOCK SECONDS PATH   a request a byte every SECONDS; prints the end
  fcgi.py stall SOCK HOLD          BEGIN_REQUEST and half the params, then nothing for HOLD
                                   seconds (or until the responder closes); prints the end
  fcgi.py values SOCK              FCGI_GET_VALUES; prints the pairs answered
  fcgi.py abort SOCK               a request aborted before its end; prints the end record
  fcgi.py hol SOCK                 a stalled connection, then a whole request on another:
                                   prints the whole request's "STATUS SECONDS"
  fcgi.py body SOCK PATH BYTES     POST PATH with a body of BYTES bytes: prints "STATUS
                                   SECONDS", or how the connection ended
  fcgi.py idle SOCK GO             a kept connection: one request answered ("answered 1"),
                                   then, once the file GO exists, a second ("answered 2",
                                   or "closed"), then waits up to 60 s for the responder to
                                   close it ("closed SECONDS", or "open")
  fcgi.py hold SOCK N [SECONDS]    N connections, each with one kept request sent, held
                                   open until killed (or SECONDS, 3600); prints "sent N"
  fcgi.py db SOCK PATH DB          one request with the parameter LMTASKS_DB=DB ("-": none);
                                   prints "STATUS SECONDS"
  fcgi.py pipeline SOCK N PATH [big]
                                   N kept requests sent ahead on one connection (after a
                                   64 KiB record of no request with big), all answers read;
                                   a %d in PATH is the request's number modulo 1000;
                                   prints "answered K SECONDS" (K: how many came)
  fcgi.py fat SOCK N [SECONDS]     N connections one after another, each a 64 KiB record of
                                   no request and a kept request, answered, then held (until
                                   killed, or SECONDS, 3600); prints "held N" once all are
  fcgi.py repeat SECONDS PAUSE [--until TEXT] CMD ARGS... [-- CMD ARGS...]...
                                   the commands above, one after another, in this one
                                   process, again and again (PAUSE seconds between rounds)
                                   until SECONDS have passed: a Python start each time
                                   would cost more than the request.  Each run prints what
                                   it would alone (an error: "error REPR").  --until: stops,
                                   true, once a run's output starts with TEXT; false when
                                   SECONDS passed first
"""
import io
import os
import socket
import struct
import sys
import threading
import time


def rec(t, rid, content=b"", version=1):
    return struct.pack(">BBHHBB", version, t, rid, len(content), 0, 0) + content


def nv(name, value):
    def ln(n):
        return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)
    return ln(len(name)) + ln(len(value)) + name + value


def request(path, rid=1, keep=0, method="GET", key=None, db=None):
    pairs = [("REQUEST_METHOD", method), ("REQUEST_URI", path), ("SCRIPT_NAME", ""),
             ("QUERY_STRING", path.partition("?")[2]), ("SERVER_PROTOCOL", "HTTP/1.1")]
    if key:
        pairs.append(("HTTP_AUTHORIZATION", "Bearer " + key))
    if db:
        pairs.append(("LMTASKS_DB", db))
    params = b"".join(nv(k.encode(), v.encode()) for k, v in pairs)
    return (rec(1, rid, struct.pack(">HB5x", 1, keep)) + rec(4, rid, params) + rec(4, rid) +
            rec(5, rid))


def connect(path, timeout=10):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(path)
    return s


def read_records(s):
    """Reads records until FCGI_END_REQUEST or EOF: (stdout bytes, end record or None)."""
    buf, out = b"", b""
    while True:
        while len(buf) >= 8:
            v, t, rid, cl, pl, _ = struct.unpack(">BBHHBB", buf[:8])
            if len(buf) < 8 + cl + pl:
                break
            content, buf = buf[8:8 + cl], buf[8 + cl + pl:]
            if t == 6:
                out += content
            elif t == 3:
                return out, content
            elif t in (10, 11):
                return content, None
        try:
            d = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            d = b""
        if not d:
            return out, None
        buf += d


def count_answers(s, n):
    """Reads until n FCGI_END_REQUEST records came, or the connection ended: how many."""
    buf, ends = b"", 0
    while ends < n:
        try:
            d = s.recv(262144)
        except (ConnectionResetError, socket.timeout):
            d = b""
        if not d:
            break
        buf += d
        i = 0
        while len(buf) - i >= 8:
            cl, pl = struct.unpack(">HB", buf[i + 4:i + 7])
            if len(buf) - i < 8 + cl + pl:
                break
            ends += buf[i + 1] == 3
            i += 8 + cl + pl
        buf = buf[i:]
    return ends


def ignored():
    """A record of 64 KiB of no request (FCGI_STDIN of request 2, never begun): ignored."""
    return rec(5, 2, b"i" * 65535)


def status_of(out):
    for line in out.split(b"\r\n"):
        if line.startswith(b"Status:"):
            return line.split()[1].decode()
    return "000"


def ending(s, t0):
    """How the responder ended the connection: closed after N s, or still open."""
    try:
        d = s.recv(65536)
        while d:
            d = s.recv(65536)
        return "closed %.1f" % (time.time() - t0)
    except ConnectionResetError:
        return "closed %.1f" % (time.time() - t0)
    except socket.timeout:
        return "open %.1f" % (time.time() - t0)


def repeat(args):
    """fcgi.py repeat: see above.  Returns the exit status."""
    end = time.monotonic() + float(args[0])
    pause, args = float(args[1]), args[2:]
    until = None
    if args[:1] == ["--until"]:
        until, args = args[1], args[2:]
    cmds, cur = [], []
    for a in args:
        if a == "--":
            cmds.append(cur)
            cur = []
        else:
            cur.append(a)
    cmds.append(cur)
    prog = sys.argv[0]
    while True:
        for c in cmds:
            sys.argv = [prog] + c
            out = io.StringIO()
            real, sys.stdout = sys.stdout, out
            try:
                main()
            except (Exception, SystemExit) as e:  # noqa: BLE001 - one run's end, printed
                print("error %r" % e)
            finally:
                sys.stdout = real
            sys.stdout.write(out.getvalue())
            sys.stdout.flush()
            if until is not None and out.getvalue().startswith(until):
                return 0
        if time.monotonic() + pause >= end:
            return 0 if until is None else 1
        time.sleep(pause)


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "repeat":
        sys.exit(repeat(sys.argv[2:]))
    t0 = time.time()
    if cmd == "get":
        s = connect(path)
        s.sendall(request(sys.argv[3], method=sys.argv[4] if len(sys.argv) > 4 else "GET",
                          key=sys.argv[5] if len(sys.argv) > 5 else None))
        out, end = read_records(s)
        print(status_of(out) if end else "000", "%.3f" % (time.time() - t0))
    elif cmd == "answer":
        s = connect(path)
        s.sendall(request(sys.argv[3], method=sys.argv[4],
                          key=sys.argv[5] if len(sys.argv) > 5 else None))
        out, end = read_records(s)
        sys.stdout.write(out.decode(errors="replace").replace("\r\n", "\n") if end else
                         "no answer\n")
    elif cmd == "crafted":
        kind = sys.argv[3]
        s = connect(path, 30)
        begin = rec(1, 1, struct.pack(">HB5x", 1, 0))
        if kind == "overflow":
            body = struct.pack(">II", 0x7ffffff0 | 0x80000000, 0x20 | 0x80000000) + b"A" * 64
            data = begin + rec(4, 1, body) + rec(4, 1) + rec(5, 1)
        elif kind == "huge":
            body = struct.pack(">II", 0x40000000 | 0x80000000, 0x40000000 | 0x80000000) + b"B" * 64
            data = begin + rec(4, 1, body) + rec(4, 1) + rec(5, 1)
        elif kind == "past_end":
            data = begin + rec(4, 1, bytes([100, 5]) + b"SHORT") + rec(4, 1) + rec(5, 1)
        elif kind == "version":
            data = rec(1, 1, struct.pack(">HB5x", 1, 0), version=2)
        elif kind == "many":
            # Parameters past the limit, 60,000 bytes a record.
            data = begin + b"".join(rec(4, 1, nv(b"X", b"x" * 59990)) for _ in range(8))
        else:
            sys.exit("unknown kind " + kind)
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        print(ending(s, t0))
    elif cmd == "slow":
        delay = float(sys.argv[3])
        s = connect(path, 30)
        data = request(sys.argv[4])
        try:
            for i in range(len(data)):
                s.sendall(data[i:i + 1])
                time.sleep(delay)
        except (BrokenPipeError, ConnectionResetError):
            print("closed %.1f" % (time.time() - t0))
            return
        out, end = read_records(s)
        print("answered %.1f %s" % (time.time() - t0, status_of(out)))
    elif cmd == "stall":
        hold = float(sys.argv[3])
        s = connect(path, hold)
        data = request("/tasks")
        s.sendall(data[:40])
        print(ending(s, t0))
    elif cmd == "values":
        s = connect(path, 30)
        q = nv(b"FCGI_MAX_CONNS", b"") + nv(b"FCGI_MAX_REQS", b"") + nv(b"FCGI_MPXS_CONNS", b"")
        s.sendall(rec(9, 0, q))
        content, _ = read_records(s)
        i, pairs = 0, []
        while i < len(content):
            nl, vl = content[i], content[i + 1]
            pairs.append("%s=%s" % (content[i + 2:i + 2 + nl].decode(),
                                    content[i + 2 + nl:i + 2 + nl + vl].decode()))
            i += 2 + nl + vl
        print(" ".join(pairs))
    elif cmd == "abort":
        s = connect(path, 30)
        s.sendall(rec(1, 1, struct.pack(">HB5x", 1, 1)) +
                  rec(4, 1, nv(b"REQUEST_METHOD", b"GET")) + rec(2, 1))
        out, end = read_records(s)
        print("end", end.hex() if end else "none")
        s.sendall(request("/health", rid=2, keep=1))
        out, end = read_records(s)
        print("then", status_of(out) if end else "000")
    elif cmd == "hol":
        st = connect(path, 30)
        st.sendall(request("/tasks")[:40])
        time.sleep(0.2)
        t1 = time.time()
        s = connect(path, 30)
        s.sendall(request("/health"))
        out, end = read_records(s)
        print(status_of(out) if end else "000", "%.3f" % (time.time() - t1))
        st.close()
    elif cmd == "body":
        n = int(sys.argv[4])
        s = connect(path, 10)
        head = request(sys.argv[3], method="POST")
        head = head[:-8]    # without the empty FCGI_STDIN that ends it
        body = b"".join(rec(5, 1, b"b" * min(65535, n - i)) for i in range(0, n, 65535))
        try:
            s.sendall(head + body + rec(5, 1))
        except (BrokenPipeError, ConnectionResetError):
            print(ending(s, t0))
            return
        out, end = read_records(s)
        print("%s %.3f" % (status_of(out), time.time() - t0) if end else ending(s, t0))
    elif cmd == "idle":
        go = sys.argv[3]
        s = connect(path, 60)
        s.sendall(request("/health", keep=1))
        out, end = read_records(s)
        print("answered 1" if end else "closed", flush=True)
        while not os.path.exists(go) and time.time() - t0 < 60:
            time.sleep(0.05)
        try:
            s.sendall(request("/health", rid=2, keep=1))
            out, end = read_records(s)
        except (BrokenPipeError, ConnectionResetError):
            end = None
        print("answered 2" if end else "closed", flush=True)
        t1 = time.time()
        try:
            d = s.recv(1)
        except socket.timeout:
            print("open")
            return
        except ConnectionResetError:
            d = b""
        print("closed %.1f" % (time.time() - t1) if not d else "more bytes")
    elif cmd == "hold":
        n = int(sys.argv[3])
        held = []
        for _ in range(n):
            s = connect(path, 30)
            s.sendall(request("/health", keep=1))
            held.append(s)
        print("sent", n, flush=True)
        time.sleep(float(sys.argv[4]) if len(sys.argv) > 4 else 3600)
    elif cmd == "db":
        s = connect(path)
        db = sys.argv[4]
        s.sendall(request(sys.argv[3], db=None if db == "-" else db))
        out, end = read_records(s)
        print(status_of(out) if end else "000", "%.3f" % (time.time() - t0))
    elif cmd == "pipeline":
        n, big = int(sys.argv[3]), len(sys.argv) > 5 and sys.argv[5] == "big"
        s = connect(path, 30)
        p = sys.argv[4]
        data = (ignored() if big else b"") + b"".join(
            request(p % (i % 1000) if "%d" in p else p, keep=1) for i in range(n))
        sender = threading.Thread(target=lambda: s.sendall(data), daemon=True)
        sender.start()
        k = count_answers(s, n)
        print("answered %d %.3f" % (k, time.time() - t0))
    elif cmd == "fat":
        n = int(sys.argv[3])
        held = []
        for i in range(n):
            s = connect(path, 10)
            s.sendall(ignored() + request("/health", keep=1))
            if count_answers(s, 1) != 1:
                print("connection %d: no answer" % i)
                return
            held.append(s)
        print("held", n, flush=True)
        time.sleep(float(sys.argv[4]) if len(sys.argv) > 4 else 3600)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
