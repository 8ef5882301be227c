# The iofog-connector image: a static binary on an empty base, run as the
# non-root user 65532. Build it with `make image`, or:
#   docker build -t iofog/iofog-connector .        (podman build works the same)
#
# Defaults (deploy/container/iofog-connector.conf): dev false (HTTPS API and
# TLS on agent and public ports), API on :8443 (an unprivileged user cannot
# bind 443 everywhere: publish it as 443), ports 7000-7099 (50 mappings;
# every published port must be listed), data in /var/lib/iofog-connector.
# The TLS identity is read from /etc/iofog-connector/server-cert.pem and
# server-key.pem, which you mount (readable by uid 65532):
#   docker run -d --name iofog-connector \
#     -v iofog-connector-data:/var/lib/iofog-connector \
#     -v $PWD/server-cert.pem:/etc/iofog-connector/server-cert.pem:ro \
#     -v $PWD/server-key.pem:/etc/iofog-connector/server-key.pem:ro \
#     -p 443:8443 -p 7000-7099:7000-7099 iofog/iofog-connector
# Any setting can be overridden with IOFOG_CONNECTOR_<KEY> variables,
# e.g. -e IOFOG_CONNECTOR_DEV=true to try it without a certificate.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=1.0.0-dev
ARG TARGETARCH
RUN CGO_ENABLED=0 GOOS=linux GOARCH=${TARGETARCH} go build -trimpath \
        -ldflags "-s -w -buildid= -X main.version=${VERSION}" \
        -o /out/usr/bin/iofog-connector ./cmd/iofog-connector
RUN mkdir -p /out/etc/iofog-connector /out/etc/ssl/certs /out/tmp /data/var/lib/iofog-connector \
 && cp deploy/container/iofog-connector.conf /out/etc/iofog-connector/iofog-connector.conf \
 && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ca-certificates.crt \
 && chmod 1777 /out/tmp \
 && chmod 0750 /data/var/lib/iofog-connector

FROM scratch
COPY --from=build /out/ /
COPY --from=build --chown=65532:65532 /data/var/lib/iofog-connector /var/lib/iofog-connector
USER 65532:65532
VOLUME ["/var/lib/iofog-connector"]
EXPOSE 8443/tcp 7000-7099/tcp
HEALTHCHECK --interval=30s --timeout=10s --start-period=5m --retries=3 \
    CMD ["/usr/bin/iofog-connector", "health"]
ENTRYPOINT ["/usr/bin/iofog-connector"]
CMD ["start"]
