/* Module bits: a little self-contained arithmetic so the compiler has real work to do. */
#include <string.h>
#include "cproj.h"

struct bits_state {
    uint64_t acc;
    uint32_t table[64];
    char name[32];
};

static uint64_t bits_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL + 11;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

static void bits_init(struct bits_state *s, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    for (int k = 0; k < 64; k++)
        s->table[k] = (uint32_t)bits_mix(seed + (uint64_t)k * 11);
    strncpy(s->name, "bits", sizeof s->name - 1);
}

static uint64_t bits_step(struct bits_state *s, int round)
{
    uint64_t h = s->acc;
    for (int k = 0; k < 64; k++) {
        uint32_t v = s->table[(k * 7 + round) & 63];
        h = bits_mix(h ^ v) + (uint64_t)(unsigned char)s->name[k & 7];
        if (h & 1)
            s->table[k] ^= (uint32_t)(h >> 32);
        else
            s->table[k] += (uint32_t)h;
    }
    return h;
}

uint64_t bits_run(uint64_t seed)
{
    struct bits_state s;
    bits_init(&s, seed);
    for (int r = 0; r < 100; r++)
        s.acc = bits_step(&s, r);
    return s.acc;
}
