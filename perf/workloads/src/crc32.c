/* Table-driven CRC-32 (reflected, polynomial 0xEDB88320, as zlib's) over a 64 KiB buffer: byte loads,
   table lookups, shifts and XORs. The table is built bit by bit first. */
#include "wl.h"
const char wl_name[] = "crc32";
const uint32_t wl_default_n = 800;

#define SIZE 65536
static uint32_t table[256];
static uint8_t buf[SIZE];

uint32_t wl_run(uint32_t n)
{
    for (uint32_t i = 0; i < 256; i++)
    {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
        table[i] = c;
    }
    uint32_t seed = 0x12345678;
    for (uint32_t i = 0; i < SIZE; i++) buf[i] = (uint8_t)xorshift32(&seed);

    uint32_t sum = 0;
    for (uint32_t rep = 0; rep < n; rep++)
    {
        buf[rep & (SIZE - 1)] ^= (uint8_t)rep;
        uint32_t crc = 0xFFFFFFFFu;
        for (uint32_t i = 0; i < SIZE; i++) crc = table[(crc ^ buf[i]) & 0xFF] ^ (crc >> 8);
        sum ^= ~crc + rep;
    }
    return sum;
}
