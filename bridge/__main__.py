from bridge.daemon.cli import main

raise SystemExit(main())
