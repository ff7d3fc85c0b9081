"""The ``shapes`` preset (``--preset shapes``): the built-in offline models of the shapes world."""

from __future__ import annotations

from pixgen.presets import Preset

# both shapes CLIPs (the CNN, trained on minimal pairs and on generation runs, tells a square from a circle and is
# hard to fool), a start drawn by the code prior for the prompt (backgrounds and places right from step 0), mostly
# wide cutouts (the CLIPs read positions and counts from the whole image), the shapes denoiser's prior after the
# first 30 % of the run (clean flat shapes) and a latent pyramid that moves whole areas, with the lr rising over
# the first 10 % (else Adam's first step, a full-lr step on every grid, wipes out the prior's start); a two-shape
# caption is also scored shape by shape in a box on its side of the relation, with nothing outside the boxes (the
# layout loss); measured with scripts/eval_shapes.py (docs/shapes.md), in fp32: the preset keeps fp32 (so its
# results stay those measured) until a bf16 comparison of its pass rate says otherwise
SHAPES = Preset(
    settings={"clip": ["shapes", "shapes_cnn@2"], "drawer": "vqgan:shapes", "size": "64x64", "iterations": 150,
              "cutn": 16, "lr": 0.5, "lr_warmup": 10, "cut_zoom": 0.1, "loss": ["denoise:0.3@60", "layout"],
              "latent_levels": 4, "init_noise": "prior", "code_prior": "shapes", "precision": "fp32"},
    drawer_options=("latent_levels", "init_noise", "code_prior"),
    description="the built-in offline shapes world (64x64, both shapes CLIPs, the shapes VQGAN)",
)
