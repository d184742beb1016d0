"""A web page to share a trained generator: seed, sliders, a walk between two seeds, truncation
and a download button, served by Python's own HTTP server (no extra package).

    python -m dcgan serve --checkpoint runs/faces [--host 127.0.0.1] [--port 8000]

Routes: `/` the page; `/info` the generator's latent size, image size and sliders (JSON);
`/face.png?seed=S[&to=T&t=0.5][&psi=0.7][&d=0.5,-1,...][&raw=1][&best=1]` one face.  A bad
value or a missing generator answers with one readable line (status 400 or 503) that the page
shows, and the server keeps serving: a run that is still training can be served before its
first generator exists, and newer generators are picked up as they are saved.
"""

from __future__ import annotations

import html
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from dcgan.errors import CheckpointError, DcganError
from dcgan.explore import FaceExplorer

log = logging.getLogger("dcgan.serve")

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
      label.textContent = (info.direction_kind === "dimensions" ? "z" : "direction ") + i + " ";
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
    """(seed, FaceExplorer.face's keyword choices) from a query string; DcganError if bad."""
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

    seed = number("seed", int, 0)
    to = number("to", int)
    choices = {"to": to, "t": number("t", float, 0.0) if to is not None else 0.0,
               "psi": number("psi", float, 1.0), "ema": one("raw", "0") != "1",
               "best": one("best", "0") == "1"}
    if one("d"):
        try:
            choices["offsets"] = [float(v) for v in one("d").split(",")]
        except ValueError:
            raise DcganError(f"d {one('d')!r}: expected comma-separated numbers") from None
    return seed, choices


def make_handler(explorer: FaceExplorer, name: str):
    class Handler(BaseHTTPRequestHandler):
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
                    seed, choices = _choices(parse_qs(url.query))
                    return self._answer(200, explorer.face_png(seed, **choices), "image/png")
                return self._text(404, f"{url.path}: no such page (try /)")
            except CheckpointError as e:
                return self._text(503, str(e))
            except DcganError as e:
                return self._text(400, str(e))
            except Exception as e:  # never take the server down for one request
                log.warning("serve: %s on %s: %s", type(e).__name__, self.path, e)
                return self._text(500, f"{type(e).__name__}: {e}")

        def log_message(self, format, *args):  # http.server prints every request otherwise
            log.debug("serve: " + format, *args)

    return Handler


def make_server(checkpoint: str | Path, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """An HTTP server for `checkpoint`'s faces (not yet serving; `port` 0 picks a free one)."""
    explorer = FaceExplorer(checkpoint)
    try:
        server = ThreadingHTTPServer((host, port), make_handler(explorer, Path(checkpoint).resolve().name))
    except OSError as e:
        raise DcganError(f"--host {host} --port {port}: cannot listen there ({e.strerror}); "
                         "pick another --port") from None
    server.daemon_threads = True
    return server


def serve_in_background(checkpoint: str | Path, host: str = "127.0.0.1", port: int = 0):
    """Start serving in a daemon thread (the notebook's cell); return (server, url)."""
    server = make_server(checkpoint, host, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{host}:{server.server_address[1]}/"
