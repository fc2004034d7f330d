"""naemon-bridge: passive check results and external commands over HTTP into Naemon or Nagios.

The package is layered; each folder is a layer and imports only from the layers before it (its ``__init__`` says
what it is for), and ``tests/test_layers.py`` fails on an upward import or a cycle:

``core`` (pure values, no I/O) → ``config`` → ``engine`` (delivery, spool, the engine's files) → ``http`` (the
application, auth, the submission path) → ``intake`` (one module per dialect) → ``daemon`` (the process, the CLI).
"""

__version__ = "0.1.0"
