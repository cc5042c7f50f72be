#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for cardctl tests.
#
# Usage:
#   scripts/pg-cluster.sh start DIR   # (install PostgreSQL if needed,) initdb, start, print URL
#   scripts/pg-cluster.sh stop DIR    # stop the cluster in DIR (no-op if not running)
#   scripts/pg-cluster.sh url DIR     # print the SQLAlchemy URL of the cluster in DIR
#   scripts/pg-cluster.sh install     # only install Debian's postgresql if its binaries are missing
#
# Layout of DIR:  DIR/data (PGDATA), DIR/sock (unix socket dir), DIR/log (server log),
#                 DIR/port (port used by the last start).
# The server listens only on the unix socket DIR/sock and on 127.0.0.1:PORT
# (PORT = $CARDCTL_PG_PORT, else the port DIR was last started with, else 54329).
# Authentication is "trust". $CARDCTL_PG_BINDIR overrides the server bin dir
# (default: `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin).
#
# Only the URL goes to stdout (as the last line); all chatter goes to stderr.
# As root, the server runs as the "postgres" OS user (PostgreSQL refuses to run
# as root); as a non-root user who owns DIR, it runs as that user.
set -euo pipefail

DEFAULT_PORT=54329
DB_NAME=cardctl
DB_ROLE=cardctl
BOOTSTRAP_SUPERUSER=postgres   # initdb -U; same name whoever runs the server
PG_OS_USER=postgres

log() { printf 'pg-cluster: %s\n' "$*" >&2; }
die() { printf 'pg-cluster: error: %s\n' "$*" >&2; exit 1; }

usage() {
    printf 'usage: %s {start|stop|url} DIR | install\n' "$0" >&2
    exit 2
}

if [[ $# -eq 1 && $1 == install ]]; then
    set -- install /nonexistent   # no DIR: only the binaries matter
fi
[[ $# -eq 2 ]] || usage
CMD=$1
[[ -n $2 ]] || usage
# Absolute path without requiring DIR to exist yet.
DIR=$(realpath -m -- "$2")
DATA=$DIR/data
SOCK=$DIR/sock
LOGFILE=$DIR/log
PORTFILE=$DIR/port

IS_ROOT=0
[[ $(id -u) -eq 0 ]] && IS_ROOT=1

# Run a command as the server's OS user (cwd / so that postgres never
# complains about not being able to chdir into e.g. /root).
as_pg() {
    if (( IS_ROOT )); then
        (cd / && runuser -u "$PG_OS_USER" -- "$@")
    else
        "$@"
    fi
}

# ---------------------------------------------------------------- binaries ---

find_bindir() {
    local d
    if [[ -n ${CARDCTL_PG_BINDIR:-} ]]; then
        [[ -x $CARDCTL_PG_BINDIR/initdb ]] && { printf '%s\n' "$CARDCTL_PG_BINDIR"; return 0; }
        return 1
    fi
    # Debian's /usr/bin/pg_config (libpq-dev) may report /usr/bin, which has no
    # server binaries: only trust it if initdb is really there.
    if command -v pg_config >/dev/null 2>&1; then
        d=$(pg_config --bindir 2>/dev/null || true)
        if [[ -n $d && -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]]; then
            printf '%s\n' "$d"; return 0
        fi
    fi
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -V | tail -n 1 || true)
    if [[ -n $d && -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]]; then
        printf '%s\n' "$d"; return 0
    fi
    return 1
}

install_postgresql() {
    (( IS_ROOT )) || die "PostgreSQL server binaries not found and not root: install the Debian 'postgresql' package first"
    log "PostgreSQL server binaries not found; installing Debian package 'postgresql'"
    # We never use the package's own cluster (15/main on port 5432): tell
    # postgresql-common not to create it at all. createcluster.conf includes
    # this directory last, so this wins over the packaged default.
    mkdir -p /etc/postgresql-common/createcluster.d
    printf '# written by cardctl scripts/pg-cluster.sh: tests use private clusters\ncreate_main_cluster = false\n' \
        > /etc/postgresql-common/createcluster.d/cardctl-no-main-cluster.conf
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        postgresql >&2
}

ensure_pg_os_user() {
    (( IS_ROOT )) || return 0
    if ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
        log "creating system user '$PG_OS_USER'"
        useradd --system --user-group --home-dir /var/lib/postgresql \
            --no-create-home --shell /bin/bash "$PG_OS_USER"
    fi
}

# ------------------------------------------------------------- directories ---

# Make every ancestor of DIR traversable by the postgres user. Ancestors under
# a temp dir (e.g. from `mktemp -d`, mode 0700) get o+x; anything else is an
# error rather than a silent permission change.
ensure_traversable() {
    (( IS_ROOT )) || return 0
    local tmpdirs=(/tmp /var/tmp)
    [[ -n ${TMPDIR:-} ]] && tmpdirs+=("$(realpath -m -- "$TMPDIR")")
    local path="" comp t fixable comps=()
    IFS=/ read -r -a comps <<< "${DIR#/}"
    # Check /, then each ancestor down to DIR's parent.
    local ancestors=(/)
    for comp in "${comps[@]:0:${#comps[@]}-1}"; do
        path+=/$comp
        ancestors+=("$path")
    done
    for path in "${ancestors[@]}"; do
        [[ -d $path ]] || break   # will be created below with mode 0755
        if ! runuser -u "$PG_OS_USER" -- test -x "$path" 2>/dev/null; then
            fixable=0
            for t in "${tmpdirs[@]}"; do
                [[ $path == "$t"/* ]] && fixable=1
            done
            if (( fixable )); then
                log "chmod o+x $path (so that user $PG_OS_USER can reach $DIR)"
                chmod o+x -- "$path"
            else
                die "user $PG_OS_USER cannot traverse $path; pick a DIR under /tmp or fix permissions"
            fi
        fi
    done
}

prepare_dir() {
    # Unix socket paths are limited to 107 bytes (sun_path).
    local sockfile="$SOCK/.s.PGSQL.$PORT"
    (( ${#sockfile} <= 107 )) || \
        die "socket path too long (${#sockfile} > 107 bytes): $sockfile; use a shorter DIR"
    ensure_traversable
    if [[ ! -d $DIR ]]; then
        mkdir -p -- "$DIR"
        chmod 755 -- "$DIR"
    fi
    if (( IS_ROOT )); then
        chown "$PG_OS_USER": -- "$DIR"
        chmod u+rwx,go+x -- "$DIR"
    else
        [[ -O $DIR ]] || die "$DIR is not owned by $(id -un)"
    fi
}

# ------------------------------------------------------------------ status ---

is_running() {
    [[ -f $DATA/PG_VERSION ]] || return 1
    as_pg "$BINDIR/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

# Port of the running server (postmaster.pid line 4), else of the last start
# (DIR/port), else $CARDCTL_PG_PORT / default.
current_port() {
    local p=""
    if [[ -r $DATA/postmaster.pid ]]; then
        p=$(sed -n 4p "$DATA/postmaster.pid" 2>/dev/null || true)
    fi
    if [[ ! $p =~ ^[0-9]+$ ]] && [[ -r $PORTFILE ]]; then
        p=$(head -n 1 "$PORTFILE")
    fi
    [[ $p =~ ^[0-9]+$ ]] || p=${CARDCTL_PG_PORT:-$DEFAULT_PORT}
    printf '%s\n' "$p"
}

# Percent-encode everything but unreserved characters and '/'.
urlencode() {
    local s=$1 out="" c i
    for (( i = 0; i < ${#s}; i++ )); do
        c=${s:i:1}
        case $c in
            [A-Za-z0-9._~/-]) out+=$c ;;
            *) out+=$(printf '%%%02X' "'$c") ;;
        esac
    done
    printf '%s' "$out"
}

print_url() {
    local port=$1
    printf 'postgresql+psycopg://%s@/%s?host=%s&port=%s\n' \
        "$DB_ROLE" "$DB_NAME" "$(urlencode "$SOCK")" "$port"
}

# -------------------------------------------------------------- start/stop ---

# postgresql.conf string literal: double single quotes and backslashes.
conf_quote() {
    local s=${1//\\/\\\\}
    printf "'%s'" "${s//\'/\'\'}"
}

write_conf() {
    # Rewritten on every start so that CARDCTL_PG_PORT changes take effect.
    as_pg tee "$DATA/cardctl.conf" >/dev/null <<EOF
# managed by scripts/pg-cluster.sh; rewritten on every start
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = $(conf_quote "$SOCK")
unix_socket_permissions = 0777
max_connections = 100
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
shared_buffers = 128MB
autovacuum = off
timezone = 'UTC'
log_timezone = 'UTC'
log_min_messages = warning
logging_collector = off
EOF
    if ! as_pg grep -qx "include 'cardctl.conf'" "$DATA/postgresql.conf"; then
        printf "\ninclude 'cardctl.conf'\n" | as_pg tee -a "$DATA/postgresql.conf" >/dev/null
    fi
}

setup_role_and_db() {
    as_pg "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 \
        -h "$SOCK" -p "$PORT" -U "$BOOTSTRAP_SUPERUSER" -d postgres >&2 <<EOF
SELECT format('CREATE ROLE %I LOGIN CREATEDB CREATEROLE', '$DB_ROLE')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_ROLE')\gexec
SELECT format('CREATE DATABASE %I OWNER %I', '$DB_NAME', '$DB_ROLE')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB_NAME')\gexec
EOF
}

do_start() {
    # Port: $CARDCTL_PG_PORT, else the one DIR was last started with, else default.
    PORT=${CARDCTL_PG_PORT:-}
    if [[ -z $PORT && -r $PORTFILE ]]; then
        PORT=$(head -n 1 "$PORTFILE")
    fi
    PORT=${PORT:-$DEFAULT_PORT}
    [[ $PORT =~ ^[0-9]+$ ]] && (( PORT > 0 && PORT < 65536 )) || die "bad CARDCTL_PG_PORT: $PORT"

    if ! BINDIR=$(find_bindir); then
        install_postgresql
        BINDIR=$(find_bindir) || die "PostgreSQL server binaries still not found after install"
    fi
    ensure_pg_os_user

    if is_running; then
        PORT=$(current_port)
        log "cluster in $DIR is already running (port $PORT)"
        if [[ -n ${CARDCTL_PG_PORT:-} && $CARDCTL_PG_PORT != "$PORT" ]]; then
            log "warning: CARDCTL_PG_PORT=$CARDCTL_PG_PORT ignored; stop the cluster to change its port"
        fi
        setup_role_and_db
        print_url "$PORT"
        return 0
    fi

    prepare_dir
    as_pg mkdir -p -- "$SOCK"
    as_pg chmod 755 -- "$SOCK"

    local t0
    t0=$(date +%s.%N)
    if [[ ! -f $DATA/PG_VERSION ]]; then
        log "initdb $DATA ($("$BINDIR/postgres" --version))"
        as_pg "$BINDIR/initdb" -D "$DATA" -U "$BOOTSTRAP_SUPERUSER" --auth=trust \
            -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
    fi
    write_conf
    printf '%s\n' "$PORT" | as_pg tee "$PORTFILE" >/dev/null

    log "starting server (socket $SOCK, 127.0.0.1:$PORT, log $LOGFILE)"
    if ! as_pg "$BINDIR/pg_ctl" start -w -t 60 -D "$DATA" -l "$LOGFILE" >/dev/null; then
        log "pg_ctl start failed; tail of $LOGFILE:"
        tail -n 30 "$LOGFILE" >&2 || true
        exit 1
    fi
    setup_role_and_db
    log "ready in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')s"
    print_url "$PORT"
}

do_stop() {
    if ! BINDIR=$(find_bindir); then
        log "no PostgreSQL binaries; nothing to stop"
        return 0
    fi
    if is_running; then
        log "stopping cluster in $DIR"
        as_pg "$BINDIR/pg_ctl" stop -w -t 60 -m fast -D "$DATA" >/dev/null
    else
        log "cluster in $DIR is not running"
    fi
}

do_url() {
    [[ -d $DIR ]] || die "$DIR does not exist"
    BINDIR=$(find_bindir 2>/dev/null || true)
    print_url "$(current_port)"
}

do_install() {
    if BINDIR=$(find_bindir); then
        log "PostgreSQL server binaries found in $BINDIR"
        return 0
    fi
    install_postgresql
    BINDIR=$(find_bindir) || die "PostgreSQL server binaries still not found after install"
    log "installed: $("$BINDIR/postgres" --version)"
}

case $CMD in
    install) do_install ;;
    start) do_start ;;
    stop)  do_stop ;;
    url)   do_url ;;
    *)     usage ;;
esac
