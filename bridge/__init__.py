"""naemon-bridge: passive check results and external commands over HTTP into Naemon or Nagios."""

__version__ = "0.1.0"
