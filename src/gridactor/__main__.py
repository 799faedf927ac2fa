from gridactor.cli import main

raise SystemExit(main())
