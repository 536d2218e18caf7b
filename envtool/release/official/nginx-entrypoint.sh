#!/bin/sh
# envtool's entrypoint for the nginx recipe, as Docker's official nginx image behaves: scripts in
# /docker-entrypoint.d run first, and /etc/nginx/templates/*.template become /etc/nginx/conf.d/*
# with the environment's variables substituted (envsubst).
set -e
if [ "$1" = 'nginx' ] || [ "$1" = 'nginx-debug' ]; then
	for f in /docker-entrypoint.d/*; do
		case "$f" in
			*.sh) if [ -x "$f" ]; then echo "$0: running $f"; "$f"; fi ;;
			*.envsh) if [ -x "$f" ]; then . "$f"; fi ;;
		esac
	done
	dir="${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}"
	out="${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}"
	suffix="${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}"
	if [ -d "$dir" ]; then
		defined="$(printf '${%s} ' $(env | cut -d= -f1))"
		for t in "$dir"/*"$suffix"; do
			[ -f "$t" ] || continue
			name="$(basename "$t" "$suffix")"
			echo "$0: $t -> $out/$name"
			envsubst "$defined" < "$t" > "$out/$name"
		done
	fi
fi
exec "$@"
