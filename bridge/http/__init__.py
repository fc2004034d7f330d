"""The HTTP layer every dialect stands on: the application factory (``app``) and its typed state (``keys``),
the routes (``routes``), what a dialect is to it and how answers take a dialect's shape (``dialects``),
authentication (``auth``, ``credentials``), JSON in and out (``jsonio``), the one submission path from validated
commands to the delivery task (``submission``), and the bridge's own endpoints: health, metrics, OpenAPI,
freshness. It never names a dialect: the dialects are handed to ``make_app``.

May import: ``bridge.core``, ``bridge.config``, ``bridge.engine``.
"""
