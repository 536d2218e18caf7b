#!/bin/bash
# envtool's entrypoint for the mariadb/mysql recipe: the contract of Docker's official mariadb and
# mysql images on Debian's MariaDB. MARIADB_* or MYSQL_* ROOT_PASSWORD, ALLOW_EMPTY_ROOT_PASSWORD
# (MYSQL_ALLOW_EMPTY_PASSWORD), RANDOM_ROOT_PASSWORD, ROOT_HOST, DATABASE, USER, PASSWORD (each also
# as *_FILE), and /docker-entrypoint-initdb.d (*.sh, *.sql, *.sql.gz, *.sql.xz) run once, on an
# empty /var/lib/mysql.
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

sql_escape() { sed -e "s/\\\\/\\\\\\\\/g" -e "s/'/\\\\'/g" <<< "$1"; }

if [ "${1:0:1}" = '-' ]; then
	set -- mariadbd "$@"
fi
case "$1" in mysqld|mariadbd) server=1 ;; *) server= ;; esac
if [ "$server" ]; then      # MySQL 8 options MariaDB does not know: dropped, as they mean nothing here
	args=()
	for a in "$@"; do
		case "$a" in
			--default-authentication-plugin=*|--default_authentication_plugin=*)
				echo "$0: ignoring MySQL's $a (MariaDB authenticates with mysql_native_password)" ;;
			*) args+=("$a") ;;
		esac
	done
	set -- "${args[@]}"
fi
DATADIR=/var/lib/mysql
SOCKET=/run/mysqld/mysqld.sock

if [ "$server" ] && [ "$(id -u)" = '0' ]; then
	mkdir -p "$DATADIR" /run/mysqld
	find "$DATADIR" /run/mysqld \! -user mysql -exec chown mysql:mysql '{}' +
	exec setpriv --reuid=mysql --regid=mysql --init-groups "$BASH_SOURCE" "$@"
fi

if [ "$server" ] && [ ! -d "$DATADIR/mysql" ]; then
	for v in ROOT_PASSWORD ROOT_HOST DATABASE USER PASSWORD ALLOW_EMPTY_ROOT_PASSWORD RANDOM_ROOT_PASSWORD; do
		file_env "MARIADB_$v"
		file_env "MYSQL_$v"
		m="MARIADB_$v" y="MYSQL_$v"
		export "MARIADB_$v"="${!m:-${!y:-}}"
	done
	: "${MARIADB_ALLOW_EMPTY_ROOT_PASSWORD:=${MYSQL_ALLOW_EMPTY_PASSWORD:-}}"
	: "${MARIADB_ROOT_HOST:=%}"
	if [ -z "$MARIADB_ROOT_PASSWORD" ] && [ -z "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" ] && [ -z "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
		echo >&2 'error: Database is uninitialized and password option is not specified'
		echo >&2 '  You need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and MARIADB_RANDOM_ROOT_PASSWORD'
		exit 1
	fi
	if [ "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
		MARIADB_ROOT_PASSWORD="$(head -c 24 /dev/urandom | base64)"
		echo "GENERATED ROOT PASSWORD: $MARIADB_ROOT_PASSWORD"
	fi
	echo "$0: initializing the database in $DATADIR"
	mariadb-install-db --datadir="$DATADIR" --skip-test-db --auth-root-authentication-method=normal \
		--skip-name-resolve --old-mode='UTF8_IS_UTF8MB3' > /dev/null
	"$@" --skip-networking --socket="$SOCKET" --datadir="$DATADIR" &
	pid=$!
	for _ in $(seq 60); do
		if mariadb --protocol=socket --socket="$SOCKET" -uroot -e 'SELECT 1' > /dev/null 2>&1; then break; fi
		if ! kill -0 "$pid" 2> /dev/null; then echo >&2 "$0: the set-up server exited"; exit 1; fi
		sleep 0.5
	done
	root_pw="$(sql_escape "$MARIADB_ROOT_PASSWORD")"
	hc_pw="$(head -c 24 /dev/urandom | base64)"
	{
		echo "SET @@SESSION.SQL_LOG_BIN=0;"
		echo "DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1';"
		echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$root_pw';"
		if [ "$MARIADB_ROOT_HOST" != 'localhost' ]; then
			echo "CREATE USER 'root'@'$(sql_escape "$MARIADB_ROOT_HOST")' IDENTIFIED BY '$root_pw';"
			echo "GRANT ALL ON *.* TO 'root'@'$(sql_escape "$MARIADB_ROOT_HOST")' WITH GRANT OPTION;"
		fi
		echo "CREATE USER 'healthcheck'@'localhost' IDENTIFIED BY '$hc_pw';"
		echo "GRANT USAGE ON *.* TO 'healthcheck'@'localhost';"
		if [ "$MARIADB_DATABASE" ]; then
			echo "CREATE DATABASE IF NOT EXISTS \`${MARIADB_DATABASE//\`/\`\`}\`;"
		fi
		if [ "$MARIADB_USER" ] && [ "$MARIADB_PASSWORD" ]; then
			echo "CREATE USER '$(sql_escape "$MARIADB_USER")'@'%' IDENTIFIED BY '$(sql_escape "$MARIADB_PASSWORD")';"
			if [ "$MARIADB_DATABASE" ]; then
				echo "GRANT ALL ON \`${MARIADB_DATABASE//\`/\`\`}\`.* TO '$(sql_escape "$MARIADB_USER")'@'%';"
			fi
		fi
		echo "FLUSH PRIVILEGES;"
	} | mariadb --protocol=socket --socket="$SOCKET" -uroot
	printf '[mariadb-client]\nport=3306\nsocket=%s\nuser=healthcheck\npassword=%s\nprotocol=socket\n' \
		"$SOCKET" "$hc_pw" > "$DATADIR/.my-healthcheck.cnf"
	chmod 600 "$DATADIR/.my-healthcheck.cnf"
	client=(mariadb --protocol=socket --socket="$SOCKET" -uroot "--password=$MARIADB_ROOT_PASSWORD")
	[ "$MARIADB_DATABASE" ] && client+=("$MARIADB_DATABASE")
	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
			*.sh)
				if [ -x "$f" ]; then echo "$0: running $f"; "$f"
				else echo "$0: sourcing $f"; . "$f"; fi ;;
			*.sql) echo "$0: running $f"; "${client[@]}" < "$f" ;;
			*.sql.gz) echo "$0: running $f"; gunzip -c "$f" | "${client[@]}" ;;
			*.sql.xz) echo "$0: running $f"; xzcat "$f" | "${client[@]}" ;;
			*) [ -e "$f" ] && echo "$0: ignoring $f" ;;
		esac
	done
	kill -TERM "$pid"
	wait "$pid" || true
	echo "$0: MariaDB init process done; ready for start up"
fi

exec "$@"
