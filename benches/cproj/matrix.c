/* Module matrix: a little self-contained arithmetic so the compiler has real work to do. */
#include <string.h>
#include "cproj.h"

struct matrix_state {
    uint64_t acc;
    uint32_t table[64];
    char name[32];
};

static uint64_t matrix_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL + 9;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

static void matrix_init(struct matrix_state *s, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    for (int k = 0; k < 64; k++)
        s->table[k] = (uint32_t)matrix_mix(seed + (uint64_t)k * 9);
    strncpy(s->name, "matrix", sizeof s->name - 1);
}

static uint64_t matrix_step(struct matrix_state *s, int round)
{
    uint64_t h = s->acc;
    for (int k = 0; k < 64; k++) {
        uint32_t v = s->table[(k * 7 + round) & 63];
        h = matrix_mix(h ^ v) + (uint64_t)(unsigned char)s->name[k & 7];
        if (h & 1)
            s->table[k] ^= (uint32_t)(h >> 32);
        else
            s->table[k] += (uint32_t)h;
    }
    return h;
}

uint64_t matrix_run(uint64_t seed)
{
    struct matrix_state s;
    matrix_init(&s, seed);
    for (int r = 0; r < 100; r++)
        s.acc = matrix_step(&s, r);
    return s.acc;
}
