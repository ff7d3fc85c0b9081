"""Drawers: plug-ins whose trainable parameters are the image (installed as ``pixgen.drawers``)."""
