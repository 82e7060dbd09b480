#!/usr/bin/env bash
# The official postgres image's entrypoint contract, in short: each of POSTGRES_PASSWORD,
# POSTGRES_USER and POSTGRES_DB may come from the file its *_FILE variable names (Compose
# and Swarm secrets); on the first start (no
# PG_VERSION in PGDATA) initdb with POSTGRES_USER / POSTGRES_PASSWORD, listen on all
# addresses, require a password over TCP (unless POSTGRES_HOST_AUTH_METHOD says otherwise:
# `trust` needs no password at all), then a temporary server on the Unix socket only
# creates POSTGRES_DB and runs /docker-entrypoint-initdb.d; finally exec the real server, so
# that it is PID 1 and gets the stop signal itself. A later start with data present skips
# all of that.
set -Eeuo pipefail

if [ "${1:0:1}" = '-' ]; then
    set -- postgres "$@"
fi

# As the official image's file_env: VAR from the file VAR_FILE names, never both.
file_env() {
    local var=$1 file_var="${1}_FILE"
    if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
        echo "error: both $var and $file_var are set (but are exclusive)" >&2
        exit 1
    fi
    if [ -n "${!file_var:-}" ]; then
        export "$var"="$(< "${!file_var}")"
        unset "$file_var"
    fi
}

# Only the server itself gets the treatment; `docker run IMAGE bash` runs bash.
if [ "$1" != postgres ]; then
    exec "$@"
fi

file_env POSTGRES_PASSWORD
file_env POSTGRES_USER
file_env POSTGRES_DB

if [ "$(id -u)" = 0 ]; then
    # A volume mounted over PGDATA may belong to root: hand it to postgres, then drop to it.
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 0700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    method=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$method" != trust ]; then
        cat >&2 <<'EOF'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".
EOF
        exit 1
    fi
    user=${POSTGRES_USER:-postgres}
    db=${POSTGRES_DB:-$user}

    initdb=(initdb --username="$user" --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust
        --auth-host="$method" -D "$PGDATA")
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then
        "${initdb[@]}" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD")
    else
        "${initdb[@]}"
    fi
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    echo "host all all all $method" >> "$PGDATA/pg_hba.conf"

    # The temporary server: Unix socket only, so that nothing on TCP (a healthcheck, the
    # app) ever sees a half-initialised database.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start
    psql=(psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$user" --dbname postgres)
    if [ "$db" != postgres ]; then
        "${psql[@]}" -q --set db="$db" <<<'CREATE DATABASE :"db";'
    fi
    for file in /docker-entrypoint-initdb.d/*; do
        case "$file" in
            *.sh) echo "running $file"; . "$file" ;;
            *.sql) echo "running $file"; "${psql[@]}" --dbname "$db" -f "$file" ;;
            *) ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop
    echo 'PostgreSQL init process complete; ready for start up.'
fi

exec "$@"
