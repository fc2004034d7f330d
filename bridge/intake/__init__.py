"""The intake layer: one module per dialect that senders speak, each mapping its wire format to the core and
back. Each module exposes one ``DIALECT`` (``bridge.http.dialects.Dialect``: its routes, its error shape, its
OpenAPI part); ``DIALECTS`` below is the only place that names them. Adding a dialect is one module and one line.

May import: ``bridge.core``, ``bridge.config``, ``bridge.engine``, ``bridge.http``. A dialect module never imports
another dialect module.
"""

from bridge.intake import alignak, icinga, nrdp, nsca, op5

# The first one's error shape answers the paths no dialect claims (``/health``, unknown URLs).
DIALECTS = (op5.DIALECT, alignak.DIALECT, nsca.DIALECT, nrdp.DIALECT, icinga.DIALECT)
