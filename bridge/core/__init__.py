"""The core: what a check result, an external command and a freshness deadline are, with no I/O.

Values (``values``), the command table (``command_table``) and the lines it renders (``commands``), the errors,
permissions, the engine's objects as parsed text (``objects``), the freshness table (``freshness``) and the
Alignak document model (``alignak``). Nothing here imports asyncio, aiohttp or ``os``, reads a file or the clock
(a clock is passed in).

May import: nothing of the bridge outside ``bridge.core``.
"""
