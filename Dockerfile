# Build: docker build --build-arg VERSION=v1.4.0 -t selfserve .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=${VERSION}" -o /out/selfserve ./cmd/selfserve

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates wget && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/selfserve /usr/local/bin/selfserve
USER 65532:65532
ENTRYPOINT ["selfserve"]
