# syntax=docker/dockerfile:1
#
# One image, three jobs: `serve` (the extender sidecar), `placeholders` (the placeholder
# controller) and `await-images` (the Helm hook that waits for the image pullers).
#
# - Multi-stage: the build stage has pip and the source tree; the final stage only the
#   installed virtualenv.
# - Runs as 65532:65532 (non-root, no login shell, no home directory of its own).
# - Works with a read-only root filesystem: bytecode is compiled at build time and
#   PYTHONDONTWRITEBYTECODE stops Python from trying later; anything that needs scratch space
#   (the kubernetes client's temporary certificate files, matplotlib's cache for `simulate`)
#   goes to /tmp, which the Helm chart mounts as an emptyDir.
#
# Build:  docker build -t scheduler-extender:0.1.0 .

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/scheduler-extender
COPY pyproject.toml README.md ./
COPY scheduler_extender ./scheduler_extender
# Dependency ranges live in pyproject.toml; compile bytecode now so a read-only root works.
RUN /opt/scheduler-extender/bin/pip install --no-cache-dir . \
 && /opt/scheduler-extender/bin/python -m compileall -q /opt/scheduler-extender

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="scheduler-extender" \
      org.opencontainers.image.description="Packing kube-scheduler extender, placeholder controller and image-puller awaiter for JupyterHub" \
      org.opencontainers.image.licenses="BSD-3-Clause"
COPY --from=build /opt/scheduler-extender /opt/scheduler-extender
ENV PATH=/opt/scheduler-extender/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib
USER 65532:65532
WORKDIR /tmp
EXPOSE 8888
ENTRYPOINT ["scheduler-extender"]
CMD ["--help"]
