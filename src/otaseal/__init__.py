"""otaseal: sealed live updates for Capacitor / Ionic apps, shipped from CI."""

__version__ = "0.1.0"
