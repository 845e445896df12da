# The image's entry point: initdb on the first start (an empty PGDATA), then the server as the main process.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?the first start needs POSTGRES_PASSWORD, the superuser's password}"
    printf '%s\n' "$POSTGRES_PASSWORD" | initdb --username=postgres --pwfile=/dev/stdin \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    printf "listen_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
    printf 'host all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
fi
exec "$@"
