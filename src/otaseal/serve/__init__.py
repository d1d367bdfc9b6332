"""``otaseal serve``: the self-hosted endpoint for ``@capgo/capacitor-updater``, and its stats."""
