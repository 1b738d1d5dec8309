"""Render what the device and the cluster need: the CRI-O mirror drop-in, MicroShift OLM manifests,
cluster resources (ICSP/IDMS/ITMS, CatalogSource) and the osbuild blueprints."""

from .convert import convert_file
from .errors import BlueprintError, RenderError
from .options import RenderOptions, RenderResult
from .output import render_outputs

__all__ = ["BlueprintError", "RenderError", "RenderOptions", "RenderResult", "convert_file", "render_outputs"]
