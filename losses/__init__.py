"""Losses: plug-ins that score the render and its cutouts (installed as ``pixgen.losses``)."""
