#!/bin/bash
# envtool's entrypoint for the postgres recipe: the contract of Docker's official postgres image
# on Debian's PostgreSQL. POSTGRES_PASSWORD, POSTGRES_USER, POSTGRES_DB, POSTGRES_INITDB_ARGS,
# POSTGRES_HOST_AUTH_METHOD (each also as *_FILE), PGDATA, and /docker-entrypoint-initdb.d
# (*.sh, *.sql, *.sql.gz, *.sql.xz) run once, on an empty data directory.
set -Eeo pipefail

file_env() {    # VAR [default]: $VAR, or the content of the file $VAR_FILE names
	local var="$1" file_var="${1}_FILE" def="${2:-}" val
	if [ "${!var:-}" ] && [ "${!file_var:-}" ]; then
		echo >&2 "error: both $var and $file_var are set (but are exclusive)"
		exit 1
	fi
	val="$def"
	if [ "${!var:-}" ]; then val="${!var}"; elif [ "${!file_var:-}" ]; then val="$(< "${!file_var}")"; fi
	export "$var"="$val"
	unset "$file_var"
}

if [ "${1:0:1}" = '-' ]; then
	set -- postgres "$@"
fi
export PGDATA="${PGDATA:-/var/lib/postgresql/data}"

if [ "$1" = 'postgres' ] && [ "$(id -u)" = '0' ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
	chown postgres:postgres /var/run/postgresql
	chmod 700 "$PGDATA"
	chmod 3777 /var/run/postgresql
	exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
fi

if [ "$1" = 'postgres' ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
	file_env POSTGRES_PASSWORD
	file_env POSTGRES_USER postgres
	file_env POSTGRES_DB "$POSTGRES_USER"
	file_env POSTGRES_INITDB_ARGS
	auth="${POSTGRES_HOST_AUTH_METHOD:-}"
	if [ -z "$POSTGRES_PASSWORD" ] && [ "$auth" != 'trust' ]; then
		cat >&2 <<-'END'
			Error: Database is uninitialized and superuser password is not specified.
			       You must specify POSTGRES_PASSWORD to a non-empty value for the
			       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".

			       You may also use "POSTGRES_HOST_AUTH_METHOD=trust" to allow all
			       connections without a password. This is *not* recommended.
		END
		exit 1
	fi
	mkdir -p "$PGDATA"
	pwfile="$(mktemp)"
	printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
	# shellcheck disable=SC2086
	initdb --username="$POSTGRES_USER" --pwfile="$pwfile" -D "$PGDATA" $POSTGRES_INITDB_ARGS
	rm -f "$pwfile"
	printf '\nhost all all all %s\n' "${auth:-scram-sha-256}" >> "$PGDATA/pg_hba.conf"
	printf "\nlisten_addresses = '*'\n" >> "$PGDATA/postgresql.conf"

	# a server for the set-up only, on the Unix socket
	PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start
	export PGPASSWORD="$POSTGRES_PASSWORD"
	psql=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
	if [ "$POSTGRES_DB" != 'postgres' ]; then
		"${psql[@]}" --dbname postgres --set db="$POSTGRES_DB" <<-'EOSQL'
			CREATE DATABASE :"db" ;
		EOSQL
	fi
	psql+=(--dbname "$POSTGRES_DB")
	echo
	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
			*.sh)
				if [ -x "$f" ]; then echo "$0: running $f"; "$f"
				else echo "$0: sourcing $f"; . "$f"; fi ;;
			*.sql) echo "$0: running $f"; "${psql[@]}" -f "$f"; echo ;;
			*.sql.gz) echo "$0: running $f"; gunzip -c "$f" | "${psql[@]}"; echo ;;
			*.sql.xz) echo "$0: running $f"; xzcat "$f" | "${psql[@]}"; echo ;;
			*) [ -e "$f" ] && echo "$0: ignoring $f" ;;
		esac
	done
	PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -m fast -w stop
	unset PGPASSWORD
	echo
	echo 'PostgreSQL init process complete; ready for start up.'
	echo
fi

exec "$@"
