"""The notebook's latent explorer (`nb.explore(RUN)`): ipywidgets around dcgan.apps.explore.

A seed box, a walk to a second seed, truncation, EMA/raw and last/best toggles, and one
slider per latent direction (seed128: its 32 dimensions; named, Smiling ..., where the run has
attribute directions), and a start menu of one's own latents (projected photos); every change
redraws the face, and
the status line says how long the redraw took.  Without ipywidgets it says so in one line and
shows a static grid instead.
"""

from __future__ import annotations

import time
from pathlib import Path

from dcgan.apps.explore import FaceExplorer
from dcgan.outputs.folder import RunPaths


class LatentExplorer:
    """The widgets and what they draw; `box` is what the notebook displays.  Tests set the
    widgets' values and read `image.value` (PNG bytes) and `last_choices`."""

    def __init__(self, run: str | Path, directions: int = 32, starts: dict | None = None):
        import ipywidgets as w

        self.explorer = FaceExplorer(run, directions, starts)
        info = self.explorer.info()
        has_best = RunPaths(run).best.is_dir() if Path(run).is_dir() else False
        self.seed = w.BoundedIntText(value=0, min=0, max=2**31 - 1, description="seed")
        self.to = w.BoundedIntText(value=1, min=0, max=2**31 - 1, description="walk to")
        self.t = w.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.05, description="walk t")
        self.psi = w.FloatSlider(value=1.0, min=0.0, max=1.5, step=0.05, description="truncation")
        self.generator = w.ToggleButtons(options=["EMA", "raw"], value="EMA", description="generator")
        self.which = w.ToggleButtons(options=["last", "best"], value="best" if has_best else "last",
                                     description="kept", disabled=not has_best)
        self.start = w.Dropdown(options=["seed", *info["starts"]], value="seed", description="start",
                                disabled=not info["starts"])
        self.sliders = [w.FloatSlider(value=0.0, min=-3.0, max=3.0, step=0.1, description=name,
                                      continuous_update=True) for name in info["names"]]
        self.image = w.Image(format="png", width=256, height=256)
        self.status = w.Label()
        for control in (self.seed, self.start, self.to, self.t, self.psi, self.generator, self.which,
                        *self.sliders):
            control.observe(lambda _change: self.redraw(), names="value")
        sliders = w.GridBox(self.sliders, layout=w.Layout(grid_template_columns="repeat(4, 1fr)"))
        controls = w.VBox([w.HBox([self.seed, self.start]), w.HBox([self.to, self.t]), self.psi,
                           w.HBox([self.generator, self.which])])
        self.box = w.VBox([w.HBox([self.image, controls]), self.status,
                           w.HTML(f"<b>{info['directions']} sliders</b>: the latent's "
                                  f"{info['direction_kind']} ({info['latent_dim']}-d latent)"),
                           sliders])
        self.last_choices: dict = {}
        self.last_ms = 0.0
        self.redraw()

    def choices(self) -> tuple[int, dict]:
        offsets = [s.value for s in self.sliders]
        return int(self.seed.value), {
            "to": int(self.to.value) if self.t.value > 0 else None, "t": float(self.t.value),
            "psi": float(self.psi.value), "offsets": offsets if any(offsets) else None,
            "ema": self.generator.value == "EMA", "best": self.which.value == "best",
            "start": None if self.start.value == "seed" else self.start.value}

    def redraw(self) -> None:
        seed, choices = self.choices()
        start = time.perf_counter()
        try:
            self.image.value = self.explorer.face_png(seed, **choices)
        except Exception as e:  # noqa: BLE001 (a widget callback must not raise into the kernel)
            self.status.value = f"error: {e}"
            return
        self.last_ms = 1000 * (time.perf_counter() - start)
        self.last_choices = {"seed": seed, **choices}
        self.status.value = f"seed {seed}: drawn in {self.last_ms:.0f} ms"


def explore(run: str | Path, directions: int = 32, starts: dict | None = None):
    """Show the latent explorer for `run` (a run folder or a generator .keras); return it, or
    None (one line and a static grid) where ipywidgets is missing.  `starts`: name -> latent
    (e.g. `nb.project(...)`'s), offered as starting faces besides the seed."""
    from IPython.display import display

    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        from dcgan.outputs.images import show_image
        from dcgan.outputs.sampling import generate

        print("the latent explorer needs ipywidgets (pip install ipywidgets); a static grid instead")
        out = Path(run) / "faces.png" if Path(run).is_dir() else Path("faces.png")
        generate(run, n=16, seed=0, out=out)
        show_image(out, "faces (seeds 0-15 of seed 0's draw)")
        return None
    _enable_colab_widgets()
    explorer = LatentExplorer(run, directions, starts)
    display(explorer.box)
    return explorer


def _enable_colab_widgets() -> None:
    """Colab renders ipywidgets 8 only with its custom widget manager switched on."""
    try:
        from google.colab import output  # type: ignore[import-not-found]
    except ImportError:
        return
    output.enable_custom_widget_manager()
