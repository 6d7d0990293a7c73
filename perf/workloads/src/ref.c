/* Host reference: the same workload source built for the host, printing for each n given on the command line the
   checksum and the seconds wl_run took. build.sh uses the checksums for the expected values in workloads.json (not for
   smp, which checks itself); `dynasmp bench --native` uses the seconds as the speed no translator can beat. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "wl.h"

uint32_t wl_status;

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
    {
        uint32_t n = (uint32_t)strtoul(argv[i], NULL, 10);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        uint32_t sum = wl_run(n);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("%s %u 0x%08x %.6f\n", wl_name, n, sum, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    }
    return wl_status;
}
