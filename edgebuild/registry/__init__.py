"""OCI distribution client, OCI image layout and the mirroring engine.

Public entry points for the CLI live in `edgebuild.registry.mirror`.
"""
