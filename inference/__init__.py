"""ArtMatch inference: embedders, the describer, the gallery indices and the HTTP service."""
