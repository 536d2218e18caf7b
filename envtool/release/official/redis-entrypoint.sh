#!/bin/sh
# envtool's entrypoint for the redis recipe, as Docker's official redis image behaves: flags alone
# are passed to redis-server; without a config file redis is reachable from other containers
# (--protected-mode no); the server runs as the redis user in /data.
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi
if [ "$1" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
	find . \! -user redis -exec chown redis '{}' +
	exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi
if [ "$1" = 'redis-server' ]; then
	conf=
	case "$2" in *.conf) conf=1 ;; esac
	case " $* " in *" --protected-mode "*) ;; *) [ -z "$conf" ] && set -- "$@" --protected-mode no ;; esac
fi
exec "$@"
