# The images of the four services, one target each, built from the repository root (and `drill`, the scheduled
# drill's, built only when named):
#
#   docker build --target catalog --tag resilient-shop/catalog:0.1.0 .
#
# `make images` builds every target, tagged with the version of the root pyproject.toml (shop_devtools.images).
# Build arguments: BASE_IMAGE (a slim CPython 3.11 image, the version of .python-version, the same one for building and
# running), UV_VERSION.
# Behind a TLS-intercepting proxy, give its CA bundle (a full PEM bundle: it replaces the default trust store for
# pip and uv during the build) as the BuildKit secret `ca`:
#
#   docker build --secret id=ca,src=/path/to/ca-bundle.pem --target catalog .
#
# There is deliberately no `# syntax=` line and no `COPY --from=<image>`: both pull from a registry. Everything here
# is in the Dockerfile frontend that BuildKit ships (Docker 23 or later, or DOCKER_BUILDKIT=1 with buildx).

ARG BASE_IMAGE=python:3.11-slim-bookworm

# The lock file and every workspace member's pyproject.toml, nothing else: the dependency layers below are rebuilt
# only when one of these changes, and `uv sync --locked` sees the whole workspace (new members included).
FROM ${BASE_IMAGE} AS manifests
WORKDIR /src
COPY . .
RUN find . -type f ! -name pyproject.toml ! -name uv.lock -delete \
    && find . -mindepth 1 -type d -empty -delete

# uv (the version the Makefile pins), installed with pip; never part of a final image.
FROM ${BASE_IMAGE} AS builder
ARG UV_VERSION=0.13.9
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON=python3 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
RUN --mount=type=secret,id=ca,required=false \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python -m pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /src
COPY --from=manifests /src ./

# One build stage per service: third-party dependencies from uv.lock first (their own layer), then the contracts,
# shopkit (which imports them) and the service installed as regular (non-editable) packages into /opt/venv, bytecode
# compiled.
FROM builder AS build-catalog
RUN --mount=type=secret,id=ca,required=false --mount=type=cache,target=/root/.cache/uv \
    if [ -s /run/secrets/ca ]; then export SSL_CERT_FILE=/run/secrets/ca; fi \
    && uv sync --locked --no-dev --no-install-workspace --package shop-catalog
COPY services/contracts services/contracts
COPY services/shopkit services/shopkit
COPY services/catalog services/catalog
RUN --mount=type=secret,id=ca,required=false --mount=type=cache,target=/root/.cache/uv \
    if [ -s /run/secrets/ca ]; then export SSL_CERT_FILE=/run/secrets/ca; fi \
    && uv sync --locked --no-dev --no-editable --package shop-catalog

FROM builder AS build-users
RUN --mount=type=secret,id=ca,required=false --mount=type=cache,target=/root/.cache/uv \
    if [ -s /run/secrets/ca ]; then export SSL_CERT_FILE=/run/secrets/ca; fi \
    && uv sync --locked --no-dev --no-install-workspace --package shop-users
COPY services/contracts services/contracts
COPY services/shopkit services/shopkit
COPY services/users services/users
RUN --mount=type=secret,id=ca,required=false --mount=type=cache,target=/root/.cache/uv \
    if [ -s /run/secrets/ca ]; then export SSL_CERT_FILE=/run/secrets/ca; fi \
    && uv sync --locked --no-dev --no-editable --package shop-users

FROM builder AS build-payment
RUN --mount=type=secret,id=ca,required=false --mount=type=cache,target=/root/.cache/uv \
    if [ -s /run/secrets/ca ]; then export SSL_CERT_FILE=/run/secrets/ca; fi \
    && uv sync --locked --no-dev --no-install-workspace --package shop-payment
COPY services/contracts services/contracts
COPY services/shopkit services/shopkit
COPY services/payment services/payment
RUN --mount=type=secret,id=ca,required=false --mount=type=cache,target=/root/.cache/uv \
    if [ -s /run/secrets/ca ]; then export SSL_CERT_FILE=/run/secrets/ca; fi \
    && uv sync --locked --no-dev --no-editable --package shop-payment

FROM builder AS build-storefront
RUN --mount=type=secret,id=ca,required=false --mount=type=cache,target=/root/.cache/uv \
    if [ -s /run/secrets/ca ]; then export SSL_CERT_FILE=/run/secrets/ca; fi \
    && uv sync --locked --no-dev --no-install-workspace --package shop-storefront
COPY services/contracts services/contracts
COPY services/shopkit services/shopkit
COPY services/storefront services/storefront
RUN --mount=type=secret,id=ca,required=false --mount=type=cache,target=/root/.cache/uv \
    if [ -s /run/secrets/ca ]; then export SSL_CERT_FILE=/run/secrets/ca; fi \
    && uv sync --locked --no-dev --no-editable --package shop-storefront

# The scheduled drill's image (k8s/components/scheduled-drill): shop_load and what it imports, every workspace member
# but the tests. Built only when named (`python -m shop_devtools.images drill`, which `--scheduled-drill` runs).
FROM builder AS build-drill
RUN --mount=type=secret,id=ca,required=false --mount=type=cache,target=/root/.cache/uv \
    if [ -s /run/secrets/ca ]; then export SSL_CERT_FILE=/run/secrets/ca; fi \
    && uv sync --locked --no-dev --no-install-workspace --package shop-load
COPY services services
COPY tools/devtools tools/devtools
COPY load load
RUN --mount=type=secret,id=ca,required=false --mount=type=cache,target=/root/.cache/uv \
    if [ -s /run/secrets/ca ]; then export SSL_CERT_FILE=/run/secrets/ca; fi \
    && uv sync --locked --no-dev --no-editable --package shop-load

# What every service runs on: the same base, a non-root user, no pip, the standard library's bytecode compiled now
# (the base image ships none, and nothing may be written at run time: the root filesystem is read-only, only /tmp
# is writable).
FROM ${BASE_IMAGE} AS runtime
ARG VERSION=unversioned
LABEL org.opencontainers.image.vendor="resilient-shop" \
      org.opencontainers.image.version="${VERSION}"
ENV PATH="/opt/venv/bin:${PATH}" \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    ENVIRONMENT=production \
    LOG_FORMAT=json
RUN python -m pip uninstall --yes pip setuptools wheel \
    && python -m compileall -q -j 0 -x '/(test|tests|idle_test)/|/site-packages/' \
        "$(python -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')" \
    && groupadd --system --gid 10001 shop \
    && useradd --system --uid 10001 --gid shop --no-log-init --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin shop

FROM runtime AS catalog
COPY --from=build-catalog /opt/venv /opt/venv
LABEL org.opencontainers.image.title="resilient-shop catalog"
ENV PORT=8081
EXPOSE 8081
USER 10001:10001
CMD ["shop-catalog"]

FROM runtime AS users
COPY --from=build-users /opt/venv /opt/venv
LABEL org.opencontainers.image.title="resilient-shop users"
ENV PORT=8082
EXPOSE 8082
USER 10001:10001
CMD ["shop-users"]

FROM runtime AS payment
COPY --from=build-payment /opt/venv /opt/venv
LABEL org.opencontainers.image.title="resilient-shop payment"
ENV PORT=8083
EXPOSE 8083
USER 10001:10001
CMD ["shop-payment"]

# The drill with wrk (its browsing) from Debian's own packages; matplotlib's cache in the pod's writable /tmp. wrk is
# not pinned to a version: Debian rebuilds it per architecture (4.1.0-3+bN), and BASE_IMAGE already fixes the release.
FROM runtime AS drill
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install --yes --no-install-recommends wrk \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build-drill /opt/venv /opt/venv
LABEL org.opencontainers.image.title="resilient-shop drill"
ENV MPLCONFIGDIR=/tmp/matplotlib
USER 10001:10001
CMD ["shop-drill", "--help"]

# The last stage is also what a plain `docker build .` produces: the public entry point.
FROM runtime AS storefront
COPY --from=build-storefront /opt/venv /opt/venv
LABEL org.opencontainers.image.title="resilient-shop storefront"
ENV PORT=8080
EXPOSE 8080
USER 10001:10001
CMD ["shop-storefront"]
