# syntax=docker/dockerfile:1
# The API and worker image (docker-compose.yml runs it as migrate, api and worker).
# Two stages: wheels are built with pip's full toolchain, the runtime gets only them.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml ./
COPY domain domain
COPY schema schema
COPY resolvers resolvers
COPY infrastructure infrastructure
COPY workers workers
COPY migrations migrations
# The project and its runtime dependencies only: no test tools, no embedded servers.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    LOG_FORMAT=json
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin coursereg
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels
USER coursereg
EXPOSE 8000 9100
# SIGTERM (compose's stop signal) drains in-flight requests and worker batches.
STOPSIGNAL SIGTERM
ENTRYPOINT ["coursereg"]
CMD ["serve"]
