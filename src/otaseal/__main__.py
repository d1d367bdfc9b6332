"""Allow ``python -m otaseal``."""

from otaseal._entry import main

raise SystemExit(main())
