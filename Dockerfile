# twofold: a static binary on a distroless base, running as an unprivileged
# user. Build: docker build -t twofold .
# Run: docker run -e TWOFOLD_SECRET_KEY=… -e TWOFOLD_DATABASE_URL=postgres://… \
#        -e TWOFOLD_ISSUER=https://id.example.com -e TWOFOLD_LISTEN=0.0.0.0:8080 -p 8080:8080 twofold
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# No cgo: SQLite is modernc.org/sqlite, pure Go, so the binary is static.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/twofold ./cmd/twofold

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/twofold /usr/local/bin/twofold
# The embedded SQLite default lives here; mount a volume, or use PostgreSQL.
WORKDIR /var/lib/twofold
ENV TWOFOLD_DATA_DIR=/var/lib/twofold
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/twofold"]
CMD ["serve"]
