"""The GitHub Action adapter: the runner protocol, and the entrypoint built on it."""
