"""The process: the command line (``cli``), serving and shutting down (``server``), worker processes
(``workers``), systemd notification (``systemd``), daemonizing (``daemonize``), live reload (``reload``), the
demo and its throwaway Nagios (``demo``, ``sandbox``), and the senders' command-line clients (``clients``).
It puts the layers together: ``make_app(config, DIALECTS)``.

May import: every layer below it: ``bridge.core``, ``bridge.config``, ``bridge.engine``, ``bridge.http``,
``bridge.intake`` (only its ``DIALECTS``).
"""
