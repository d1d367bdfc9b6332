# The otaseal GitHub Action image. The runner builds it from this file on every job run
# (action.yml: `image: Dockerfile`) with the repository root as the build context.
#
# Rules for container actions (docs: "Dockerfile support for GitHub Actions"):
# - no USER: the action runs as root so it can write the workspace the runner mounts;
# - nothing relies on WORKDIR: the runner passes --workdir /github/workspace;
# - the ENTRYPOINT is exec form with absolute paths.
# tests/integration/test_validators.py checks these rules and runs hadolint.

# python:3.11.16-slim-bookworm (multi-arch index digest). Bump deliberately:
#   docker buildx imagetools inspect python:3.11-slim-bookworm
FROM python:3.11-slim-bookworm@sha256:528257d48c1da0dcecc2e725d1ae34498d60c965f1241e39cd6a85a8859bdf84

# PYTHONSAFEPATH: the script's own folder (otaseal/action) must not shadow top-level modules.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONSAFEPATH=1 \
    PYTHONPATH=/app/src \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY requirements/action.txt /app/requirements/action.txt
RUN pip install --no-cache-dir --require-hashes --only-binary=:all: \
        --requirement /app/requirements/action.txt

COPY src/otaseal /app/src/otaseal

ENTRYPOINT ["/usr/local/bin/python", "/app/src/otaseal/action/entrypoint.py"]
