/* Fast path of the N:M selection rule (DESIGN.md section 1), for golden/nm.py.
 *
 * For each group of M elements: composite = key << ib | (M - 1 - j), unique within the group
 * and larger for the element that wins (larger key, or equal key and lower index). A sorting
 * network (pruned to what the N-th largest line depends on) runs over blocks of B groups laid
 * out column by column, so the compare-exchanges vectorize across groups. Element j is kept
 * iff its composite >= the N-th largest composite of its group. The network comes from Python.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define B 64

enum { S_I8 = 0, S_I16 = 1, S_I32 = 2, S_I64 = 3, S_F16 = 4, S_F32 = 5 };

static inline uint64_t key_of(const void *x, int64_t i, int storage) {
    switch (storage) {
    case S_I8:  { int32_t v = ((const int8_t *)x)[i];  return (uint64_t)(v < 0 ? -v : v); }
    case S_I16: { int32_t v = ((const int16_t *)x)[i]; return (uint64_t)(v < 0 ? -v : v); }
    case S_I32: { int64_t v = ((const int32_t *)x)[i]; return (uint64_t)(v < 0 ? -v : v); }
    case S_I64: { int64_t v = ((const int64_t *)x)[i]; return (uint64_t)(v < 0 ? -v : v); }
    case S_F16: return ((const uint16_t *)x)[i] & 0x7FFFu;
    default:    return ((const uint32_t *)x)[i] & 0x7FFFFFFFu;
    }
}

#define DEFINE_KERNEL(NAME, T)                                                                 \
static void NAME(const void *x, uint8_t *out, int64_t groups, int m, int n, int storage,      \
                 const int32_t *net, int ncomp, int lines, int ib) {                          \
    int64_t nblocks = (groups + B - 1) / B;                                                     \
    _Pragma("omp parallel")                                                                     \
    {                                                                                           \
        T *c = (T *)malloc(sizeof(T) * (size_t)lines * B);                                      \
        T *orig = (T *)malloc(sizeof(T) * (size_t)m * B);                                       \
        _Pragma("omp for schedule(static)")                                                     \
        for (int64_t blk = 0; blk < nblocks; blk++) {                                           \
            int64_t g0 = blk * B;                                                               \
            int nb = (int)((groups - g0) < B ? (groups - g0) : B);                              \
            for (int j = 0; j < m; j++)                                                         \
                for (int g = 0; g < B; g++) {                                                   \
                    T v = 0;                                                                    \
                    if (g < nb) v = ((T)key_of(x, (g0 + g) * m + j, storage) << ib)             \
                                    | (T)(m - 1 - j);                                           \
                    c[j * B + g] = v; orig[j * B + g] = v;                                      \
                }                                                                               \
            for (int j = m; j < lines; j++) memset(&c[j * B], 0, sizeof(T) * B);                \
            for (int k = 0; k < ncomp; k++) {                                                   \
                T *a = &c[net[2 * k] * B], *b = &c[net[2 * k + 1] * B];                         \
                for (int g = 0; g < B; g++) {                                                   \
                    T lo = a[g] < b[g] ? a[g] : b[g], hi = a[g] < b[g] ? b[g] : a[g];           \
                    a[g] = lo; b[g] = hi;                                                       \
                }                                                                               \
            }                                                                                   \
            const T *thr = &c[(lines - n) * B];                                                 \
            for (int g = 0; g < nb; g++)                                                        \
                for (int j = 0; j < m; j++)                                                     \
                    out[(g0 + g) * m + j] = orig[j * B + g] >= thr[g];                          \
        }                                                                                       \
        free(c); free(orig);                                                                    \
    }                                                                                           \
}

DEFINE_KERNEL(kernel32, uint32_t)
DEFINE_KERNEL(kernel64, uint64_t)

int nm_mask(const void *x, uint8_t *out, int64_t groups, int m, int n, int storage,
            const int32_t *net, int ncomp, int lines, int ib, int wide) {
    if (m < 2 || n < 1 || n >= m || lines < m || storage < 0 || storage > S_F32) return -1;
    if (wide) kernel64(x, out, groups, m, n, storage, net, ncomp, lines, ib);
    else kernel32(x, out, groups, m, n, storage, net, ncomp, lines, ib);
    return 0;
}
