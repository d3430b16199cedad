"""HTTP/1.1 over a plain socket, for requests no client library would send (hostile paths,
Host headers, header bytes) and for watching what a server does with a slow or huge one."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def header_list(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


def address(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def encode_request(method: str, target: bytes | str, headers: list[tuple[bytes | str, bytes | str]],
                   body: bytes = b"", *, host: bytes | str | None = b"127.0.0.1") -> bytes:
    def b(x: bytes | str) -> bytes:
        return x if isinstance(x, bytes) else x.encode("latin-1")

    lines = [b(method) + b" " + b(target) + b" HTTP/1.1"]
    if host is not None:
        lines.append(b"Host: " + b(host))
    lines.append(b"Connection: close")
    lines.extend(b(k) + b": " + b(v) for k, v in headers)
    if body or method.upper() == "POST":
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def parse_response(data: bytes) -> RawResponse | None:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return None
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return RawResponse(int(parts[1]), headers, body)


def read_all(sock: socket.socket, deadline: float) -> bytes:
    """Everything the server sends until it closes (or the deadline passes)."""
    out = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return out
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return out
        except ConnectionResetError:
            return out
        if not chunk:
            return out
        out += chunk


def request(base_url: str, method: str, target: bytes | str,
            headers: list[tuple[bytes | str, bytes | str]] = (), body: bytes = b"", *,
            host: bytes | str | None = b"127.0.0.1", timeout: float = 10.0) -> RawResponse:
    with socket.create_connection(address(base_url), timeout=timeout) as sock:
        sock.sendall(encode_request(method, target, list(headers), body, host=host))
        data = read_all(sock, time.monotonic() + timeout)
    response = parse_response(data)
    if response is None:
        raise AssertionError(f"no HTTP response: {data[:200]!r}")
    return response
