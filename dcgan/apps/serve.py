"""A web page to share a trained generator: seed, sliders, a walk between two seeds, truncation
and a download button, served by Python's own HTTP server (no extra package).

    python -m dcgan serve --checkpoint runs/faces [--host 127.0.0.1] [--port 8000]

Routes: `/` the page; `/info` the generator's latent size, image size and sliders (JSON);
`/face.png?seed=S[&to=T&t=0.5][&psi=0.7][&d=0.5,-1,...][&raw=1][&best=1]` one face.  A bad
value or a missing generator answers with one readable line (status 400 or 503) that the page
shows, and the server keeps serving: a run that is still training can be served before its
first generator exists, and newer generators are picked up as they are saved.

What it takes from the network is bounded: a fixed pool of worker threads (a request beyond
the pool and a short queue is answered 503 at once), capped query values (checked before they
are parsed), a timeout on slow clients, and an unexpected error answers a generic line (the
details go to the server's log, not to whoever asked).  Bound to anything but loopback, it
says so in a warning: the page is then open to anyone who can reach the port.
"""

from __future__ import annotations

import html
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from dcgan.errors import CheckpointError, DcganError
from dcgan.apps.explore import FaceExplorer

log = logging.getLogger("dcgan.apps.serve")

WORKERS, QUEUED = 4, 16  # requests drawn at once, and waiting beyond them, before 503s
MAX_QUERY = 2048  # characters of a query string: the sliders of any generator fit easily
MAX_DIRECTIONS = 64  # values in `d=` (the explorer shows at most 32 sliders)
LOOPBACK = ("127.0.0.1", "localhost", "::1")

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dcgan: faces from {name}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body {{ font-family: system-ui, sans-serif; margin: 1.5em; max-width: 60em; }}
 #face {{ width: 256px; height: 256px; image-rendering: pixelated; background: #eee; }}
 .row {{ margin: .4em 0; }} label {{ margin-right: 1em; }}
 #sliders {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(13em, 1fr)); gap: .2em 1em; }}
 #status {{ color: #444; min-height: 1.4em; }} #status.error {{ color: #b00; }}
</style></head>
<body>
<h1>Faces from {name}</h1>
<div class="row"><img id="face" alt="generated face"></div>
<div class="row"><a id="download" download="face.png" href="#">download this face</a></div>
<p id="status">loading ...</p>
<div class="row">
 <label>seed <input id="seed" type="number" min="0" step="1" value="0"></label>
 <button id="random">random seed</button>
 <label>walk to seed <input id="to" type="number" min="0" step="1" value="1"></label>
 <label>t <input id="t" type="range" min="0" max="1" step="0.05" value="0"></label>
</div>
<div class="row">
 <label>truncation psi <input id="psi" type="range" min="0" max="1.5" step="0.05" value="1"></label>
 <label><input id="raw" type="checkbox"> raw generator (not EMA)</label>
 <label><input id="best" type="checkbox"> best kept</label>
 <button id="reset">sliders to 0</button>
</div>
<div class="row" id="kind"></div>
<div id="sliders"></div>
<script>
const $ = id => document.getElementById(id);
const status = (text, error) => {{ $("status").textContent = text; $("status").className = error ? "error" : ""; }};
let sliders = [], shown = null, pending = 0;
function query() {{
  const q = new URLSearchParams({{seed: $("seed").value, psi: $("psi").value}});
  if (Number($("t").value) > 0) {{ q.set("to", $("to").value); q.set("t", $("t").value); }}
  if (sliders.some(s => Number(s.value) !== 0)) q.set("d", sliders.map(s => s.value).join(","));
  if ($("raw").checked) q.set("raw", "1");
  if ($("best").checked) q.set("best", "1");
  return q.toString();
}}
async function redraw() {{
  const ticket = ++pending, q = query();
  try {{
    const answer = await fetch("face.png?" + q);
    if (!answer.ok) throw new Error(await answer.text());
    const blob = await answer.blob();
    if (ticket !== pending) return;  // a newer request is on its way
    if (shown) URL.revokeObjectURL(shown);
    shown = URL.createObjectURL(blob);
    $("face").src = shown;
    $("download").href = shown;
    $("download").download = "face-seed" + $("seed").value + ".png";
    status("seed " + $("seed").value + (q.includes("t=") ? ", walking to seed " + $("to").value : ""));
  }} catch (e) {{ if (ticket === pending) status(e.message, true); }}
}}
async function start() {{
  try {{
    const answer = await fetch("info");
    if (!answer.ok) throw new Error(await answer.text());
    const info = await answer.json();
    $("kind").textContent = info.directions + " sliders: the latent's " + info.direction_kind +
      " (" + info.latent_dim + "-d latent, " + info.size + "x" + info.size + " faces)";
    $("sliders").innerHTML = "";
    sliders = [];
    for (let i = 0; i < info.directions; i++) {{
      const label = document.createElement("label");
      label.textContent = info.names[i] + " ";  // Smiling, ... where the run has named directions
      const s = Object.assign(document.createElement("input"),
        {{type: "range", min: -3, max: 3, step: 0.1, value: 0, id: "d" + i}});
      s.addEventListener("input", redraw);
      label.appendChild(s); $("sliders").appendChild(label); sliders.push(s);
    }}
    redraw();
  }} catch (e) {{ status(e.message + " (trying again in 3 s)", true); setTimeout(start, 3000); }}
}}
for (const id of ["seed", "to", "t", "psi", "raw", "best"]) $(id).addEventListener("input", redraw);
$("random").onclick = () => {{ $("seed").value = Math.floor(Math.random() * 100000); redraw(); }};
$("reset").onclick = () => {{ sliders.forEach(s => s.value = 0); redraw(); }};
start();
</script></body></html>
"""


def _choices(query: dict[str, list[str]]) -> tuple[int, dict]:
    """(seed, FaceExplorer.face's keyword choices) from a parsed query; DcganError if bad."""
    def one(name, default=None):
        return query.get(name, [default])[-1]

    def number(name, kind, default=None):
        text = one(name)
        if text is None or text == "":
            return default
        try:
            return kind(text)
        except ValueError:
            raise DcganError(f"{name} {text!r}: expected a {'whole ' if kind is int else ''}number") from None

    def bounded(name, value, low, high, what="a number"):
        if value is not None and not low <= value <= high:
            raise DcganError(f"{name} {value}: {what} from {low} to {high}")
        return value

    seed = bounded("seed", number("seed", int, 0), 0, 2**32 - 1, "a seed is a whole number")
    to = bounded("to", number("to", int), 0, 2**32 - 1, "a seed is a whole number")
    choices = {"to": to, "t": bounded("t", number("t", float, 0.0), 0.0, 1.0) if to is not None else 0.0,
               "psi": bounded("psi", number("psi", float, 1.0), -2.0, 2.0),
               "ema": one("raw", "0") != "1", "best": one("best", "0") == "1"}
    if one("d"):
        if one("d").count(",") >= MAX_DIRECTIONS:  # counted before anything is parsed
            raise DcganError(f"d: more than {MAX_DIRECTIONS} values")
        try:
            choices["offsets"] = [bounded("d", float(v), -10.0, 10.0) for v in one("d").split(",")]
        except ValueError:
            raise DcganError("d: expected comma-separated numbers") from None
    return seed, choices


def make_handler(explorer: FaceExplorer, name: str):
    class Handler(BaseHTTPRequestHandler):
        timeout = 30  # seconds a client may take to send its request: slow ones free their worker

        def _answer(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _text(self, status: int, text: str) -> None:
            self._answer(status, text.encode("utf-8"), "text/plain; charset=utf-8")

        def do_GET(self):  # noqa: N802 (http.server's name)
            url = urlparse(self.path)
            try:
                if url.path in ("/", "/index.html"):
                    page = PAGE.format(name=html.escape(name))
                    return self._answer(200, page.encode("utf-8"), "text/html; charset=utf-8")
                if url.path == "/info":
                    return self._answer(200, json.dumps(explorer.info()).encode(), "application/json")
                if url.path == "/face.png":
                    if len(url.query) > MAX_QUERY:
                        return self._text(414, f"a query of {len(url.query)} characters: at most {MAX_QUERY}")
                    seed, choices = _choices(parse_qs(url.query, max_num_fields=16))
                    return self._answer(200, explorer.face_png(seed, **choices), "image/png")
                return self._text(404, f"{url.path}: no such page (try /)")
            except CheckpointError as e:
                return self._text(503, str(e))
            except DcganError as e:
                return self._text(400, str(e))
            except Exception as e:  # never take the server down for one request
                log.warning("serve: %s on %s: %s", type(e).__name__, self.path[:200], e)
                return self._text(500, "the server could not draw this face (its log says why)")

        def log_message(self, format, *args):  # http.server prints every request otherwise
            log.debug("serve: " + format, *args)

    return Handler


class PooledHTTPServer(HTTPServer):
    """An HTTPServer whose requests run on a fixed pool of threads; one that finds the pool and
    its queue full is answered 503 at once instead of starting a thread of its own."""

    def __init__(self, address, handler, workers: int = WORKERS, queued: int = QUEUED):
        super().__init__(address, handler)
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="dcgan-serve")
        self.slots = threading.BoundedSemaphore(workers + queued)

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            try:
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                                b"Content-Length: 22\r\n\r\nbusy: try again soon\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        self.pool.submit(self._handle, request, client_address)

    def _handle(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self.slots.release()

    def server_close(self):
        super().server_close()
        self.pool.shutdown(wait=False, cancel_futures=True)


def make_server(checkpoint: str | Path, host: str = "127.0.0.1", port: int = 8000) -> PooledHTTPServer:
    """An HTTP server for `checkpoint`'s faces (not yet serving; `port` 0 picks a free one)."""
    explorer = FaceExplorer(checkpoint)
    try:
        server = PooledHTTPServer((host, port), make_handler(explorer, Path(checkpoint).resolve().name))
    except OSError as e:
        raise DcganError(f"--host {host} --port {port}: cannot listen there ({e.strerror}); "
                         "pick another --port") from None
    if host not in LOOPBACK:
        log.warning("serving on %s: anyone who can reach this machine on port %d sees the page and "
                    "can draw faces with it (--host 127.0.0.1 keeps it to this machine)",
                    host or "every interface", server.server_address[1])
    return server


def serve_in_background(checkpoint: str | Path, host: str = "127.0.0.1", port: int = 0):
    """Start serving in a daemon thread (the notebook's cell); return (server, url)."""
    server = make_server(checkpoint, host, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{host}:{server.server_address[1]}/"
