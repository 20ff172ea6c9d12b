/* Entry point of the benchmark project: runs every module and prints a checksum. */
#include <inttypes.h>
#include <stdio.h>
#include "cproj.h"

int main(void)
{
    uint64_t sum = 0;
    sum ^= strbuf_run(sum + 1);
    sum ^= hash_run(sum + 1);
    sum ^= vec_run(sum + 1);
    sum ^= sort_run(sum + 1);
    sum ^= parse_run(sum + 1);
    sum ^= fmt_run(sum + 1);
    sum ^= crc_run(sum + 1);
    sum ^= list_run(sum + 1);
    sum ^= matrix_run(sum + 1);
    sum ^= rng_run(sum + 1);
    sum ^= bits_run(sum + 1);
    printf("%016" PRIx64 "\n", sum);
    return 0;
}
