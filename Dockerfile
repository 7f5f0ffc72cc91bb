# The one image recipe of every app: `docker build --build-arg APP=calc .` builds calc's image
# (compose passes APP for each service). Every step up to `ARG APP` is the same for all apps,
# so those layers (Python, the pinned dependencies, the kit, the domain packages) are built
# once and shared, and a code change rebuilds only the small layers after them.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=5000
WORKDIR /srv

# Dependencies first, from pyproject.toml and constraints.txt alone: this layer changes only
# when they do. The versions are constraints.txt's, the ones the tests ran on. Wheels only
# (hiredis, pydantic-core ship them), so no compiler ever enters the image.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" >/tmp/requirements.txt \
 && pip install --only-binary=:all: -c constraints.txt -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin canaduck

COPY apps/__init__.py apps/__init__.py
COPY apps/kit apps/kit
# The domain packages (code the services of one domain share), each a few kilobytes: in every
# image, so that this layer stays common to all apps.
COPY apps/arithmetic apps/arithmetic
COPY apps/rally apps/rally
COPY apps/chat apps/chat

# The app's own package, last: `COPY apps/` with an empty APP would copy every app.
ARG APP
RUN test -n "$APP" || { echo "build with --build-arg APP=<a folder of apps/>" >&2; exit 1; }
COPY apps/${APP} apps/${APP}
ENV APP=${APP}
USER canaduck
EXPOSE 5000
# GET /health over bash's /dev/tcp: no interpreter to start, a few ms even on a loaded machine,
# where a Python probe took seconds just to start. Tolerant: a failure during the start period
# does not count and a success ends it at once, so a slow start or a busy minute is not
# "unhealthy". Compose and the Swarm stack inherit it as it is.
HEALTHCHECK --interval=3s --timeout=10s --start-period=300s --retries=5 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT:-5000} && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && read -r -t 10 status <&3 && [[ $status == *' 200'* ]]"]
# Hypercorn on 0.0.0.0:5000, started by the kit: Redis is checked first, SIGTERM leaves the
# directory before Hypercorn drains. A shell reads APP, then `exec` hands its place (and the
# signals) to Python.
CMD exec python -m apps.kit.serve "apps.$APP"
