"""Bundle formats: the native sealed ``.cub`` and the Capgo-compatible zip."""
