/* No work: boot, print, exit. Its time is the start-up cost that bench subtracts from the others. */
#include "wl.h"
const char wl_name[] = "startup";
const uint32_t wl_default_n = 1;
uint32_t wl_run(uint32_t n) { return n; }
