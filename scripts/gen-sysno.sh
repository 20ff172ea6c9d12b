#!/bin/sh
# Regenerates crates/abi/src/x86_64/table.rs from the installed kernel headers.
# Calls newer than the headers are listed by hand below.
set -e
out=crates/abi/src/x86_64/table.rs
{
  echo "//! x86_64 syscall numbers and names (generated from the kernel's unistd_64.h, plus"
  echo "//! the calls added after Linux 6.1 up to 6.18). Regenerate with scripts/gen-sysno.sh."
  echo
  echo "/// (number, name) for every x86_64 syscall, sorted by number."
  echo "pub const TABLE: &[(u32, &str)] = &["
  ( grep '#define __NR_' /usr/include/x86_64-linux-gnu/asm/unistd_64.h | awk '{print $3, substr($2,6)}'
    printf '%s\n' "451 cachestat" "452 fchmodat2" "453 map_shadow_stack" "454 futex_wake" "455 futex_wait" \
      "456 futex_requeue" "457 statmount" "458 listmount" "459 lsm_get_self_attr" "460 lsm_set_self_attr" \
      "461 lsm_list_modules" "462 mseal" "463 setxattrat" "464 getxattrat" "465 listxattrat" \
      "466 removexattrat" "467 open_tree_attr" "468 file_getattr" "469 file_setattr"
  ) | sort -n -u | awk '{printf "    (%d, \"%s\"),\n", $1, $2}' | tee "$out.tmp"
  echo "];"
  echo
  echo "/// Named constants, one per syscall."
  echo "pub mod nr {"
  grep -o '(.*)' "$out.tmp" | tr -d '(),"' | awk '{printf "    pub const %s: u32 = %d;\n", toupper($2), $1}'
  echo "}"
  echo
  echo "/// Highest syscall number this table knows."
  echo "pub const MAX_NR: u32 = 469;"
} > "$out"
rm -f "$out.tmp"
