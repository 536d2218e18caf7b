#!/bin/sh
# healthcheck.sh of Docker's official mariadb image, for the common checks: --connect and
# --innodb_initialized both mean the server answers on its socket (as the healthcheck user
# the entrypoint created).
exec mariadb-admin --defaults-extra-file=/var/lib/mysql/.my-healthcheck.cnf ping > /dev/null
