/* Mandelbrot escape counts on a grid (scalar double multiply/add, UCOMISD/COMISD branches, CVTSI2SD). */
#include "wlfp.h"
const char wl_name[] = "mandel";
const uint32_t wl_default_n = 2;

#define W 160
#define H 120
#define MAXIT 200

uint32_t wl_run(uint32_t n)
{
    wl_fp_enable();
    uint32_t sum = 0;
    for (uint32_t rep = 0; rep < n; rep++)
    {
        double zoom = 1.0 / (1 + rep);
        OPAQUE(rep);
        for (int py = 0; py < H; py++)
        {
            double ci = -1.2 * zoom + 2.4 * zoom * py / H;
            for (int px = 0; px < W; px++)
            {
                double cr = -2.0 * zoom - 0.5 + 3.0 * zoom * px / W;
                double zr = 0, zi = 0;
                int it = 0;
                while (it < MAXIT && zr * zr + zi * zi <= 4.0)
                {
                    double t = zr * zr - zi * zi + cr;
                    zi = 2 * zr * zi + ci;
                    zr = t;
                    it++;
                }
                sum = rotl32(sum, 3) ^ (uint32_t)it;
            }
        }
    }
    return sum;
}
