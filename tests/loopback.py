"""A JSON HTTP server on a loopback port for the stand-ins of cloud APIs: the real client
libraries talk to it over HTTP, and the stand-in's ``handle`` decides every answer."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: handle(method, path, query, headers, raw body) -> (status, JSON-serialisable payload)
Handle = Callable[[str, str, dict, Message, bytes], tuple[int, object]]


@contextmanager
def json_server(handle: Handle) -> Iterator[str]:
    """Serve ``handle`` on 127.0.0.1 in a thread; yield the base URL; stop on exit."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def _answer(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, payload = handle(
                self.command, url.path, urllib.parse.parse_qs(url.query), self.headers, raw
            )
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
