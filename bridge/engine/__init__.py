"""The engine side: the one delivery task (``delivery``) that owns the transport into the engine (``transport``:
the command pipe or Naemon's query handler) and the spool (``spool``), the engine's files as the bridge reads
them (``files``), and the freshness monitor that submits stale results (``monitor``). No HTTP here.

May import: ``bridge.core``, ``bridge.config``.
"""
