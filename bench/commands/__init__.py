"""CLI command groups: each module defines ``register(app)``; ``bench.cli`` calls them all."""
