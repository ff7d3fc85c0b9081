"""The shapes world's losses (``--loss denoise``, ``--loss layout``), registered through entry points."""
