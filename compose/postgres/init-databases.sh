#!/usr/bin/env bash
# A role and a database per service, created idempotently: docker-compose.yml's one-shot `postgres-init` runs
# this on every `up`, before the migrations.
#
# Usage: init-databases.sh [SERVICE...]   (default: catalog users payment)
# Connection: libpq's PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE (an administrator of the server).
# Each service's role password: <SERVICE>_DB_PASSWORD (e.g. CATALOG_DB_PASSWORD), required.
# The SQL is the one the Kubernetes StatefulSet runs (k8s/base/postgres/provision.sql; PROVISION_SQL names it in
# the container), so both grant the same: each role owns its database, PUBLIC may not connect to it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
sql="${PROVISION_SQL:-$here/../../k8s/base/postgres/provision.sql}"
if [ "$#" -eq 0 ]; then
  set -- catalog users payment
fi

for _ in $(seq 30); do
  pg_isready --quiet && break
  sleep 1
done

for service in "$@"; do
  password_var="${service^^}_DB_PASSWORD"
  password="${!password_var:-}"
  if [ -z "$password" ]; then
    echo "init-databases: $password_var is not set" >&2
    exit 1
  fi
  psql --no-psqlrc --quiet --set=ON_ERROR_STOP=1 \
    --set=role="$service" --set=password="$password" \
    --file="$sql"
  echo "init-databases: database $service owned by role $service is ready"
done
