"""Ports for test servers and SIP peers: blocks below the kernel's ephemeral range, never reused.

``bind(0)`` hands out ephemeral ports, which the kernel may give again to an outgoing
connection a moment later, and SIPp takes its media port *and the three above it* (RTP and
RTCP for audio and video): two SIPp processes given "free" ports a few apart then collide
("Unable to bind main socket"). Here every caller gets a block of four ports from
20000–31999 (below the ephemeral range, above Asterisk's RTP 10000–10999 in tests), checked
free for UDP and TCP, and no block is handed out twice in one test run.
"""

from __future__ import annotations

import os
import socket
import threading

_FIRST, _LAST, _BLOCK = 20_000, 32_000, 4
_lock = threading.Lock()
# Start somewhere different per process, so parallel runs on one machine rarely meet.
_next = _FIRST + (os.getpid() * _BLOCK * 7) % (_LAST - _FIRST)


def _free(port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def port_block() -> int:
    """The first of four consecutive ports, all free for UDP and TCP on loopback."""
    global _next
    with _lock:
        for _ in range((_LAST - _FIRST) // _BLOCK):
            base = _next
            _next = _FIRST + (_next - _FIRST + _BLOCK) % (_LAST - _FIRST)
            if all(_free(port) for port in range(base, base + _BLOCK)):
                return base
    raise RuntimeError("no free port block between 20000 and 32000")


def free_port() -> int:
    """A loopback port for a test server: :func:`port_block`'s first port (see the module docstring)."""
    return port_block()


def free_base(first: int, last: int, span: int = 30) -> int:
    """The first base port in ``first``..``last`` (steps of 100) with the ``span`` ports above it
    free for UDP and TCP: a cluster's ports count up from one base (composition/cluster.py)."""
    for base in range(first, last, 100):
        if all(_free(port) for port in range(base, base + span)):
            return base
    raise RuntimeError(f"no free block of {span} ports between {first} and {last}")
