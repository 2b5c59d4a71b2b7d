"""The stepdag REST API (an edge, like ``cli`` and ``handlers``): see ``app.build_app``."""
