"""The pytest plugin entry point (registered through the ``pytest11`` entry point)."""
