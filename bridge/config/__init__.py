"""The configuration: the TOML file parsed once into frozen values (``model``); every error names its key and
its file.

May import: ``bridge.core``.
"""
