# free_port: prints a TCP port on 127.0.0.1 that nothing listens on now (sourced by the test and
# benchmark scripts; sff refuses a port in use, so a lost race is a clear failure, not a mix-up).
free_port() {
    while :; do
        p=$(( $(od -An -N2 -tu2 /dev/urandom) % 20000 + 30000 ))
        if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then
            echo "$p"
            return 0
        fi
    done
}
