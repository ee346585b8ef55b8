"""`python -m miniloop` is the same as the `miniloop` command."""

from miniloop.cli import main

raise SystemExit(main())
