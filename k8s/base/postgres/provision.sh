#!/usr/bin/env bash
# Run by the `provision` container beside PostgreSQL at every start of its pod: waits for the server, then for
# each service creates its role and database unless they exist and sets the role's password from the Secret
# (so a changed Secret is followed, and a second run changes nothing). Then it marks itself done (the container's
# readiness probe) and idles until the pod stops. `provision.sh --once` provisions and exits: docker compose's
# one-shot `postgres-init` runs it so.
#
# Connection: the libpq variables PGHOST, PGPORT, PGUSER, PGPASSWORD (the superuser); passwords of the services'
# roles: CATALOG_DB_PASSWORD, USERS_DB_PASSWORD, PAYMENT_DB_PASSWORD.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
services=(catalog users payment)

until pg_isready --quiet; do
  echo "provision: waiting for PostgreSQL at ${PGHOST:-localhost}:${PGPORT:-5432}"
  sleep 1
done

for service in "${services[@]}"; do
  password_variable="${service^^}_DB_PASSWORD"
  password="${!password_variable:?$password_variable is not set}"
  psql --no-psqlrc --quiet --set ON_ERROR_STOP=1 \
    --set role="$service" --set password="$password" \
    --file "$script_dir/provision.sql"
  echo "provision: role and database $service are in place"
done

if [[ "${1:-}" == "--once" ]]; then
  exit 0
fi

touch /tmp/provisioned
trap 'exit 0' TERM INT
while true; do
  sleep 3600 &
  wait $!
done
