/* Host reference: the same workload source built for the host, printing the checksum for each n given on the
   command line. build.sh uses it for the expected values in workloads.json (not for smp, which checks itself). */
#include <stdio.h>
#include <stdlib.h>
#include "wl.h"

uint32_t wl_status;

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
    {
        uint32_t n = (uint32_t)strtoul(argv[i], NULL, 10);
        printf("%s %u 0x%08x\n", wl_name, n, wl_run(n));
    }
    return wl_status;
}
