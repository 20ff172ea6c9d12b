/* Shared declarations of the benchmark project: every module exports one entry point. */
#ifndef CPROJ_H
#define CPROJ_H
#include <stddef.h>
#include <stdint.h>
uint64_t strbuf_run(uint64_t seed);
uint64_t hash_run(uint64_t seed);
uint64_t vec_run(uint64_t seed);
uint64_t sort_run(uint64_t seed);
uint64_t parse_run(uint64_t seed);
uint64_t fmt_run(uint64_t seed);
uint64_t crc_run(uint64_t seed);
uint64_t list_run(uint64_t seed);
uint64_t matrix_run(uint64_t seed);
uint64_t rng_run(uint64_t seed);
uint64_t bits_run(uint64_t seed);
#endif
