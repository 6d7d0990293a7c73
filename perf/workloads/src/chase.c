/* Pointer chasing: a singly linked cycle through 65536 nodes in a random order (Sattolo's shuffle), walked
   with dependent loads. Nodes hold real pointers, so they are 8 bytes in the 32-bit build, 16 in the 64-bit. */
#include "wl.h"
const char wl_name[] = "chase";
const uint32_t wl_default_n = 140;

#define COUNT 65536
struct node { struct node *next; uint32_t value; };
static struct node nodes[COUNT];
static uint32_t order[COUNT];

uint32_t wl_run(uint32_t n)
{
    uint32_t seed = 0x0BADF00Du;
    for (uint32_t i = 0; i < COUNT; i++) order[i] = i;
    for (uint32_t i = COUNT - 1; i > 0; i--)
    {
        uint32_t j = xorshift32(&seed) % i;    /* Sattolo: j < i gives one cycle through every node */
        uint32_t t = order[i]; order[i] = order[j]; order[j] = t;
    }
    for (uint32_t i = 0; i < COUNT; i++)
    {
        nodes[order[i]].next = &nodes[order[(i + 1) % COUNT]];
        nodes[order[i]].value = xorshift32(&seed);
    }
    uint32_t sum = 0;
    struct node *p = &nodes[0];
    for (uint32_t rep = 0; rep < n; rep++)
        for (uint32_t i = 0; i < COUNT; i++) { p = p->next; sum = rotl32(sum, 1) + p->value; }
    return sum + (uint32_t)(p - nodes);
}
