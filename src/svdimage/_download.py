"""Fetching an image from an http(s) URL: a deadline for the whole download, a byte cap.

Package-internal; :func:`svdimage.io.load_image` calls :func:`download` for
URLs. Every failure is one of ``TimeoutError`` (the deadline passed),
``ConnectionError`` (unreachable, HTTP error, not HTTP, cut short) or
``ValueError`` (over the byte cap), with a message naming the URL.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import urllib.error
import urllib.request
from typing import Any

__all__ = ["download"]


def download(url: str, *, timeout: float, max_bytes: int) -> bytes:
    """Fetch ``url`` within ``timeout`` seconds in all, with a byte cap.

    ``timeout`` is a deadline for the whole download (connecting, headers and
    body), not only for each read: when it passes, a timer shuts the
    connection's socket down, which ends any read in progress, and the download
    fails with ``TimeoutError``. A server that trickles a byte a second cannot
    keep it alive.
    """
    sockets: list[socket.socket] = []
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        for sock in list(sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    opener = urllib.request.build_opener(
        _RecordingHTTPHandler(sockets), _RecordingHTTPSHandler(sockets)
    )
    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    try:
        data = _fetch(opener, url, timeout=timeout, max_bytes=max_bytes)
    except (TimeoutError, ConnectionError, ValueError):
        if not expired.is_set():
            raise
        data = b""
    finally:
        timer.cancel()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
    if expired.is_set():
        raise TimeoutError(
            f"{url} did not finish sending within {timeout:g} s; check the address or raise "
            "the timeout."
        )
    return data


class _RecordingHTTPHandler(urllib.request.HTTPHandler):
    """Plain HTTP whose connections record their sockets (for the deadline)."""

    def __init__(self, sockets: list[socket.socket]) -> None:
        super().__init__()
        self._sockets = sockets

    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_recording(http.client.HTTPConnection, self._sockets), req)


class _RecordingHTTPSHandler(urllib.request.HTTPSHandler):
    """HTTPS whose connections record their sockets (for the deadline)."""

    def __init__(self, sockets: list[socket.socket]) -> None:
        super().__init__()
        self._sockets = sockets

    def https_open(self, req: urllib.request.Request) -> Any:
        context = getattr(self, "_context", None)  # the default TLS context urllib made
        return self.do_open(
            _recording(http.client.HTTPSConnection, self._sockets), req, context=context
        )


def _recording(base: type[http.client.HTTPConnection], sockets: list[socket.socket]) -> Any:
    class Connection(base):  # type: ignore[valid-type, misc]
        def connect(self) -> None:
            super().connect()
            sockets.append(self.sock)

    return Connection


def _fetch(
    opener: urllib.request.OpenerDirector, url: str, *, timeout: float, max_bytes: int
) -> bytes:
    """Fetch ``url`` with a per-read timeout and a byte cap (see :func:`_download`)."""
    request = urllib.request.Request(url, headers={"User-Agent": "svdimage"})
    try:
        with opener.open(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > max_bytes:
                raise ValueError(
                    f"{url} is {int(length):,} bytes, over the {max_bytes:,}-byte cap; "
                    "raise max_bytes if you trust it."
                )
            chunks, total = [], 0
            while chunk := response.read(1 << 16):
                total += len(chunk)
                if total > max_bytes:
                    raise ValueError(
                        f"{url} sent more than the {max_bytes:,}-byte cap; raise "
                        "max_bytes if you trust it."
                    )
                chunks.append(chunk)
            if length is not None and length.isdigit() and total < int(length):
                raise ConnectionError(
                    f"download of {url} was cut short: got {total:,} of the "
                    f"{int(length):,} bytes the server announced; try again."
                )
    except TimeoutError:
        raise TimeoutError(
            f"{url} did not answer within {timeout:g} s; check the address or raise the timeout."
        ) from None
    except http.client.IncompleteRead as err:
        raise ConnectionError(
            f"download of {url} was cut short: got {len(err.partial):,} bytes, "
            f"{err.expected or 'more'} missing; try again."
        ) from None
    except http.client.HTTPException as err:
        raise ConnectionError(
            f"{url} did not answer as an HTTP server does ({type(err).__name__}: {err})."
        ) from None
    except urllib.error.HTTPError as err:
        raise ConnectionError(f"{url} answered HTTP {err.code} {err.reason}.") from None
    except urllib.error.URLError as err:
        if isinstance(err.reason, TimeoutError):
            raise TimeoutError(
                f"{url} did not answer within {timeout:g} s; check the address or "
                "raise the timeout."
            ) from None
        raise ConnectionError(f"cannot reach {url}: {err.reason}.") from None
    return b"".join(chunks)
