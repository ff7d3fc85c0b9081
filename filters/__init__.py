"""Filters: plug-ins between the drawer's render and the cutouts (installed as ``pixgen.filters``)."""
