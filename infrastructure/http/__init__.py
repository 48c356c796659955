"""The HTTP side of an API process: the Starlette app, probes, limits, metrics and pages."""
