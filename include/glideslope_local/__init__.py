"""Tools for running Glideslope on one machine: the local stack (``glideslope up``), the demo,
the local alert sinks and the embedded profile's environment.

Workers never import this package; it imports the library, never the other way round.
"""
