# One image for every Lufy process: `lufy migrate`, `lufy serve`, `lufy projector`, `lufy worker`.
# The wheel carries sql/, projections/, events/ and the built web app as package data, so nothing
# is read from a source checkout at run time (and the image has no Node). Python dependencies
# come from requirements.lock, pinned with hashes.

FROM node:20-bookworm-slim AS web
WORKDIR /web
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend ./
RUN npm run build

FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir build==1.2.2
COPY pyproject.toml README.md hatch_build.py ./
COPY --from=web /web/dist ./frontend/dist
ENV LUFY_REQUIRE_WEB=1
COPY src ./src
COPY sql ./sql
COPY projections ./projections
COPY events ./events
RUN python -m build --wheel --outdir /dist

FROM python:3.11-slim
# ffprobe/ffmpeg validate and package uploads (media-processing jobs).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 10001 lufy \
    && mkdir -p /var/lib/lufy/media /var/lib/lufy/mail \
    && chown -R lufy:lufy /var/lib/lufy
# The exact, hash-checked versions of requirements.lock (scripts/lock); nothing is resolved here.
COPY requirements.lock /tmp/requirements.lock
RUN pip install --no-cache-dir --require-hashes --no-deps -r /tmp/requirements.lock \
    && rm /tmp/requirements.lock
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir --no-deps /tmp/*.whl && rm /tmp/*.whl && pip check

USER lufy
WORKDIR /home/lufy
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MEDIA_ROOT=/var/lib/lufy/media \
    EMAIL_FILE_DIR=/var/lib/lufy/mail
EXPOSE 8000
ENTRYPOINT ["lufy"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
