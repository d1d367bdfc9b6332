"""Allow ``python -m otaseal``."""

from otaseal.cli import main

raise SystemExit(main())
