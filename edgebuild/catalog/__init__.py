"""Operator catalogs in the file-based catalog (FBC) format: model, loading and bundle selection."""
