"""Training code of the shapes world's models (scripts/train_shapes_*.py use it); `pixgen run` never imports it."""
