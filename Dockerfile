# Build: docker build -t selfserve .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/selfserve ./cmd/selfserve

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates wget && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/selfserve /usr/local/bin/selfserve
USER 65532:65532
ENTRYPOINT ["selfserve"]
