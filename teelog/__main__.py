from teelog.cli import main

raise SystemExit(main())
