"""edgebuild: from an oc-mirror ImageSetConfiguration to a RHEL for Edge image with MicroShift operators."""

__version__ = "0.1.0"
