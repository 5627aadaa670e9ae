"""Misbehaving TCP peers for the shell tests (standard library only).

  peers.py silent HOST            accept every connection and never send a byte; prints the port
  peers.py blackhole HOST PORT    listen on HOST:PORT with a full accept queue, so that the kernel
                                  drops new SYNs (a black hole, like an unroutable address)
  peers.py probe HOST PORT SECS   exit 0 if connecting neither succeeds nor fails within SECS
                                  (the address black-holes), 1 otherwise

Each server prints "ready PORT" once listening, then runs until killed.
"""
import socket
import sys
import time


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def silent(host):
    s = socket.socket(family(host))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, 0))
    s.listen(128)
    print("ready", s.getsockname()[1], flush=True)
    held = []
    while True:
        c, _ = s.accept()
        held.append(c)  # never read, never write, never close


def blackhole(host, port):
    s = socket.socket(family(host))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(0)
    # The one connection the queue holds; never accepted. Later SYNs are dropped.
    filler = socket.socket(family(host))
    filler.connect((host, s.getsockname()[1]))
    print("ready", s.getsockname()[1], flush=True)
    while True:
        time.sleep(3600)


def probe(host, port, secs):
    s = socket.socket(family(host))
    s.settimeout(secs)
    try:
        s.connect((host, port))
    except socket.timeout:
        return 0
    except OSError:
        return 1
    return 1


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "silent":
        silent(sys.argv[2])
    elif cmd == "blackhole":
        blackhole(sys.argv[2], int(sys.argv[3]))
    elif cmd == "probe":
        sys.exit(probe(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
    else:
        sys.exit("unknown command " + cmd)
