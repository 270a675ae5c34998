#!/bin/sh
# Entrypoint honouring the official postgres image's contract: POSTGRES_USER, POSTGRES_PASSWORD,
# POSTGRES_DB, PGDATA, POSTGRES_INITDB_ARGS, POSTGRES_HOST_AUTH_METHOD and the scripts in
# /docker-entrypoint-initdb.d (*.sh, *.sql, *.sql.gz), run once on an empty data directory.
set -eu

: "${PGDATA:=/var/lib/postgresql/data}"
POSTGRES_USER=${POSTGRES_USER:-postgres}
POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}
POSTGRES_HOST_AUTH_METHOD=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
export PGDATA POSTGRES_USER POSTGRES_DB

if [ "${1:-}" != postgres ]; then
	exec "$@"
fi

# Started as root: own the data directory, then run as the postgres user.
if [ "$(id -u)" = 0 ]; then
	mkdir -p "$PGDATA"
	chown postgres:postgres "$PGDATA"
	chmod 0700 "$PGDATA"
	exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
		echo "error: POSTGRES_PASSWORD is empty; set it (or POSTGRES_HOST_AUTH_METHOD=trust)" >&2
		exit 1
	fi
	pwfile=$(mktemp)
	printf '%s' "${POSTGRES_PASSWORD:-}" >"$pwfile"
	# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words, as in the official image
	initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --encoding=UTF8 --locale=C.UTF-8 \
		--auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD" ${POSTGRES_INITDB_ARGS:-} >/dev/null
	rm -f "$pwfile"
	printf 'host all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"

	# A server reachable only through the socket while the init scripts run.
	pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
	psql_init() { psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" "$@"; }
	if [ "$POSTGRES_DB" != postgres ]; then
		echo 'CREATE DATABASE :"db";' | psql_init --dbname postgres --set db="$POSTGRES_DB" >/dev/null
	fi
	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
			*.sh)
				if [ -x "$f" ]; then "$f"; else . "$f"; fi ;;
			*.sql) psql_init --dbname "$POSTGRES_DB" -f "$f" ;;
			*.sql.gz) gzip -dc "$f" | psql_init --dbname "$POSTGRES_DB" ;;
			*) [ -e "$f" ] && echo "ignoring $f" ;;
		esac
	done
	pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
	echo "PostgreSQL init process complete; ready for start up."
fi

exec "$@"
