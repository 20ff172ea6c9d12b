# Convenience recipes (https://github.com/casey/just). CI does not need just: see README.

# The built-in demo.
demo:
    cargo run --release -q -- demo

# The whole test suite, as CI runs it.
test:
    scripts/test.sh

# Native vs viewos vs PRoot, side by side.
bench *ARGS:
    cargo build --release --workspace --bins
    target/release/viewos-compare {{ARGS}}

# The cost of one core dispatch (criterion).
bench-core:
    cargo bench -p viewos-benches --bench dispatch

# Regenerate the syscall table from the installed kernel headers.
gen-sysno:
    scripts/gen-sysno.sh
