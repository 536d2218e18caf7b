#!/bin/bash
# envtool's entrypoint for the wordpress recipe, as Docker's official wordpress image behaves: on
# an empty /var/www/html the WordPress files are copied in (Debian's wordpress package supplies
# them), and wp-config.php reads WORDPRESS_DB_HOST, _USER, _PASSWORD, _NAME, _CHARSET, _COLLATE,
# WORDPRESS_TABLE_PREFIX, WORDPRESS_DEBUG, WORDPRESS_CONFIG_EXTRA and the keys/salts (each also
# as *_FILE) from the environment at every request.
set -Eeo pipefail
if [[ "$1" == apache2* ]] || [ "$1" = 'php-fpm' ]; then
	if [ ! -e index.php ] && [ ! -e wp-includes/version.php ]; then
		echo >&2 "WordPress not found in $PWD - copying now..."
		cp -aL /usr/share/wordpress/. .
		rm -f wp-config.php
		chown -R www-data:www-data .
		echo >&2 "Complete! WordPress has been successfully copied to $PWD"
	fi
	if [ ! -s wp-config.php ]; then
		for k in AUTH_KEY SECURE_AUTH_KEY LOGGED_IN_KEY NONCE_KEY AUTH_SALT SECURE_AUTH_SALT LOGGED_IN_SALT NONCE_SALT; do
			var="WORDPRESS_$k"
			if [ -z "${!var:-}" ] && [ -z "$(printenv "${var}_FILE" || true)" ]; then
				sed -i "s|put your unique phrase here ($k)|$(head -c 48 /dev/urandom | base64 | tr -d '/+=')|" \
					/usr/local/share/envtool/wp-config-docker.php
			fi
		done
		cp /usr/local/share/envtool/wp-config-docker.php wp-config.php
		chown www-data:www-data wp-config.php
	fi
fi
exec "$@"
