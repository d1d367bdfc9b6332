"""Sealed deltas on the device (SPEC §19): building a release's files from the installed ones."""
