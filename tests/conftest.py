"""Fixtures shared across test folders."""

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest


@pytest.fixture(autouse=True)
def default_partition_cache(tmp_path, monkeypatch):
    """Keep the embedded default partition of each test in ``tmp_path / "datasets"``, not in ~/.cache."""
    monkeypatch.setenv("FEDGOSSIP_CACHE", str(tmp_path / "datasets"))


@pytest.fixture
def server(tmp_path):
    """Serve ``tmp_path / "site"`` on 127.0.0.1; yields (folder, base URL, list of requested paths)."""
    site = tmp_path / "site"
    site.mkdir()
    requested = []

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self):
            requested.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield site, f"http://127.0.0.1:{httpd.server_address[1]}", requested
    httpd.shutdown()
    httpd.server_close()
