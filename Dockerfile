# latchkey in a container: a release build, then a small runtime image with only the
# binary. Not built by this repository's CI (its machines have no container runtime); see
# README, "Packaging".
#
#   docker build -t latchkey .
#   docker run -p 8787:8787 -v latchkey:/var/lib/latchkey latchkey
#   docker exec <container> cat /var/lib/latchkey/latchkey-admin-token
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p latchkey-server

FROM debian:bookworm-slim
RUN useradd --system --home /var/lib/latchkey --create-home latchkey
COPY --from=build /src/target/release/latchkey /usr/local/bin/latchkey
USER latchkey
WORKDIR /var/lib/latchkey
ENV LATCHKEY_LISTEN=0.0.0.0:8787 \
    LATCHKEY_DATABASE_URL=sqlite:///var/lib/latchkey/latchkey.db \
    LATCHKEY_LOG_FORMAT=json
VOLUME /var/lib/latchkey
EXPOSE 8787
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/latchkey"]
CMD ["serve"]
