# shell.sh - helpers of the test and benchmark scripts (sourced).

# free_port: prints a TCP port on 127.0.0.1 that no socket uses now (sff refuses a port in use, so a
# lost race is a clear failure, not a mix-up). Below the kernel's ephemeral range, where the local
# end of an outgoing connection could take it meanwhile.
free_port() {
    low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
    span=$(( ${low:-32768} - 10000 ))
    [ "$span" -gt 100 ] || span=100
    while :; do
        p=$(( $(od -An -N2 -tu2 /dev/urandom) % span + 10000 ))
        if ! ss -Htan "sport = :$p" 2>/dev/null | grep -q .; then
            echo "$p"
            return 0
        fi
    done
}

# start_backends TOOL WORKDIR: starts a private Postgres and Redis with TOOL (tests/tools/backends)
# and sets PG_URL, PG_PORT, REDIS_URL, REDIS_PORT and BACKENDS_PID (the tool's); they stop when
# file descriptor 8 closes (close it with `exec 8>&-` when done). Returns nonzero, printing why,
# when they do not come up.
start_backends() {
    mkfifo "$2/ctl"
    "$1" <"$2/ctl" >"$2/env" 2>"$2/backends.err" &
    BACKENDS_PID=$!
    exec 8>"$2/ctl"
    for _ in $(seq 1 300); do
        grep -q READY=1 "$2/env" 2>/dev/null && break
        sleep 0.1
    done
    if ! grep -q READY=1 "$2/env"; then
        cat "$2/backends.err"
        return 1
    fi
    . "$2/env"
}
