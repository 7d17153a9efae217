FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
COPY dialogs ./dialogs
COPY knowledge ./knowledge
RUN pip install --no-cache-dir '.[wechaty]'
RUN mkdir -p /data && chown nobody /data
ENV FANZHA_DATA_DIR=/data FANZHA_HTTP_PORT=8080
VOLUME /data
EXPOSE 8080
USER nobody
CMD ["python", "-m", "bot", "run"]
