"""A Hugging Face Hub stand-in on 127.0.0.1: the few routes `huggingface_hub.snapshot_download`
uses for a public dataset (revision info, file tree, file download), served from a dict of
files, so the real client is tested without the network."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

SHA = "0123456789abcdef0123456789abcdef01234567"


class HubStandIn:
    """`datasets`: {"org/name": {"path/in/repo.parquet": bytes}}.  Use as a context manager;
    `url` is the endpoint (HF_ENDPOINT); `requests` lists the paths asked for."""

    def __init__(self, datasets: dict[str, dict[str, bytes]]):
        self.datasets = datasets
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                hub._answer(self, body=False)

            def do_GET(self):
                hub._answer(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def _answer(self, handler, body: bool):
        path = unquote(urlparse(handler.path).path)
        self.requests.append(f"{handler.command} {path}")
        parts = path.strip("/").split("/")
        if len(parts) >= 5 and parts[0] == "api" and parts[1] == "datasets":
            repo, kind, rest = "/".join(parts[2:4]), parts[4], parts[5:]
            files = self.datasets.get(repo)
            if files is None:
                return self._send(handler, 404, b'{"error": "Repository not found"}', body,
                                  {"X-Error-Code": "RepoNotFound"})
            if kind == "revision":
                info = {"id": repo, "sha": SHA, "siblings": [{"rfilename": f} for f in files]}
                return self._send(handler, 200, json.dumps(info).encode(), body)
            if kind == "tree":
                tree = [{"type": "file", "path": f, "size": len(data), "oid": _oid(data)}
                        for f, data in files.items()]
                return self._send(handler, 200, json.dumps(tree).encode(), body)
        if len(parts) >= 6 and parts[0] == "datasets" and parts[3] == "resolve":
            files = self.datasets.get("/".join(parts[1:3]))
            name = "/".join(parts[5:])
            if files is None or name not in files:
                return self._send(handler, 404, b"not found", body, {"X-Error-Code": "EntryNotFound"})
            data = files[name]
            return self._send(handler, 200, data, body, {
                "X-Repo-Commit": SHA, "ETag": f'"{_oid(data)}"',
                "Content-Type": "application/octet-stream"})
        return self._send(handler, 404, b"no such route", body)

    @staticmethod
    def _send(handler, status, data, body, headers=None):
        handler.send_response(status)
        for key, value in {"Content-Length": str(len(data)), **(headers or {})}.items():
            handler.send_header(key, value)
        handler.end_headers()
        if body:
            handler.wfile.write(data)


def _oid(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()
