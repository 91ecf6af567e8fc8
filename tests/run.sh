#!/bin/sh
# Runs sff's tests and ends with the line "N passed, N failed".
#   tests/run.sh [unit|integration|e2e|fuzz|all]   (default all)
# SFF_TEST_BUILDS lists the build directories to test (default "build build-asan").
# Each test program prints "ok - NAME" / "not ok - NAME" lines; a program that crashes or exits
# non-zero without a "not ok" line counts as one failure.
set -u
what=${1:-all}
builds=${SFF_TEST_BUILDS:-build build-asan}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
passed=0
failed=0
failures=""
log_dir=$(mktemp -d "${TMPDIR:-/tmp}/sff-tests-XXXXXX")

run_one() { # build, program, label
    out="$log_dir/$(echo "$3" | tr '/ ' '__').out"
    timeout 600 "$2" >"$out" 2>&1
    rc=$?
    p=$(grep -c '^ok - ' "$out")
    f=$(grep -c '^not ok - ' "$out")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        echo "not ok - $3 (exit status $rc)" >>"$out"
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" -ne 0 ]; then
        failures="$failures $3"
        echo "FAIL $3 ($p passed, $f failed)"
        sed 's/^/    /' "$out" | tail -60
    else
        echo "ok   $3 ($p passed)"
    fi
}

for b in $builds; do
    [ -x "$b/sff" ] || { echo "FAIL $b/sff is not built"; failed=$((failed + 1)); continue; }
    export SFF_BIN="$top/$b/sff" SFF_TEST_FUNCTIONS="$top/$b/tests/functions" SFF_TOP="$top"
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    if [ "$what" = all ] || [ "$what" = unit ]; then
        for t in $(find "$b/tests/unit" -type f -perm -u+x 2>/dev/null | sort); do
            run_one "$b" "$t" "$t"
        done
    fi
    if [ "$what" = all ] || [ "$what" = integration ]; then
        # Worker processes end with _exit(): leaks are checked by the unit tests, memory errors here.
        export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:detect_stack_use_after_return=0"
        for t in $(find "$b/tests/integration" -type f -perm -u+x 2>/dev/null | sort); do
            run_one "$b" "$t" "$t"
        done
    fi
done

# The house style (.clang-format), on every C file in git.
if [ "$what" = all ] || [ "$what" = format ]; then
    if files=$(git ls-files '*.c' '*.h' 2>/dev/null) && [ -n "$files" ]; then
        # shellcheck disable=SC2086
        if clang-format --dry-run -Werror $files >"$log_dir/format.out" 2>&1; then
            echo "ok   format"
            passed=$((passed + 1))
        else
            echo "FAIL format (make format FIX=1 rewrites)"
            grep -o '^[^:]*\.[ch]' "$log_dir/format.out" | sort -u | sed 's/^/    /'
            failed=$((failed + 1))
            failures="$failures format"
        fi
    fi
fi

# The web app in a real browser, once, on the first build.
if [ "$what" = all ] || [ "$what" = e2e ]; then
    first=${builds%% *}
    export SFF_BIN="$top/$first/sff"
    run_one "$first" tests/e2e/run.sh "e2e/todolist"
fi

if [ "$what" = all ] || [ "$what" = fuzz ]; then
    if make --no-print-directory fuzz-build >"$log_dir/fuzz-build.out" 2>&1; then
        for f in build-fuzz/*; do
            [ -x "$f" ] || continue
            name=$(basename "$f")
            out="$log_dir/fuzz-$name.out"
            corpus="tests/fuzz/corpus/$name"
            work=$(mktemp -d "${TMPDIR:-/tmp}/sff-fuzz-XXXXXX")
            [ -d "$corpus" ] && cp -r "$corpus/." "$work/"
            if "$f" -max_total_time="${FUZZ_SECONDS:-15}" -rss_limit_mb=2048 -artifact_prefix="$work/" "$work" >"$out" 2>&1; then
                echo "ok   fuzz $name ($(grep -o 'Done [0-9]* runs' "$out" | tail -1))"
                passed=$((passed + 1))
            else
                echo "FAIL fuzz $name"
                tail -40 "$out" | sed 's/^/    /'
                failed=$((failed + 1))
                failures="$failures fuzz/$name"
            fi
            rm -rf "$work"
        done
    else
        echo "FAIL fuzz build"
        tail -20 "$log_dir/fuzz-build.out"
        failed=$((failed + 1))
    fi
fi

rm -rf "$log_dir"
[ -n "$failures" ] && echo "failed:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
