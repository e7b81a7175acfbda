/* Fast path of the N:M selection rule (DESIGN.md section 1), for golden/nm.py.
 *
 * For each group of M elements: composite = key << ib | (M - 1 - j), unique within the group
 * and larger for the element that wins (larger key, or equal key and lower index). A sorting
 * network (pruned to what the N-th largest line depends on) runs over blocks of B groups laid
 * out column by column, so the compare-exchanges vectorize across groups. Element j is kept
 * iff its composite >= the N-th largest composite of its group. The network comes from Python.
 * Composites are signed (they stay below 2**62), so SSE2's signed compares suffice.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define B 64

/* The key rule of nmsparse.contract.formats (Format.key_rule), chosen by the caller:
 * key_abs = 1: |x| of a two's-complement integer; key_abs = 0: the bit pattern & key_mask
 * (the sign bit cleared). */
#define KEY(v) (key_abs ? ((v) < 0 ? -(int64_t)(v) : (int64_t)(v)) : ((int64_t)(v) & key_mask))

#define DEFINE_KERNEL(NAME, S, T)                                                         \
static inline __attribute__((always_inline))                                                   \
void NAME##_body(const S *x, uint8_t *out, int64_t groups, int m, int n,                      \
                 const int32_t *net, int ncomp, int lines, int ib,                            \
                 int key_abs, int64_t key_mask) {                                             \
    int64_t nblocks = (groups + B - 1) / B;                                                     \
    _Pragma("omp parallel if (nblocks >= 64)")                                                  \
    {                                                                                           \
        T *c = (T *)malloc(sizeof(T) * (size_t)lines * B);                                      \
        T *orig = (T *)malloc(sizeof(T) * (size_t)m * B);                                       \
        _Pragma("omp for schedule(static)")                                                     \
        for (int64_t blk = 0; blk < nblocks; blk++) {                                           \
            int64_t g0 = blk * B;                                                               \
            int nb = (int)((groups - g0) < B ? (groups - g0) : B);                              \
            const S *xb = x + g0 * m;                                                           \
            if (nb < B) memset(orig, 0, sizeof(T) * (size_t)m * B);                             \
            for (int g = 0; g < nb; g++)                                                        \
                for (int j = 0; j < m; j++)                                                     \
                    orig[j * B + g] = (T)((KEY(xb[g * m + j]) << ib) | (m - 1 - j));            \
            memcpy(c, orig, sizeof(T) * (size_t)m * B);                                         \
            if (lines > m) memset(c + (size_t)m * B, 0, sizeof(T) * (size_t)(lines - m) * B);   \
            for (int k = 0; k < ncomp; k++) {                                                   \
                T *restrict a = &c[net[2 * k] * B], *restrict b = &c[net[2 * k + 1] * B];       \
                for (int g = 0; g < B; g++) {                                                   \
                    T lo = a[g] < b[g] ? a[g] : b[g], hi = a[g] < b[g] ? b[g] : a[g];           \
                    a[g] = lo; b[g] = hi;                                                       \
                }                                                                               \
            }                                                                                   \
            const T *thr = &c[(lines - n) * B];                                                 \
            uint8_t *ob = out + g0 * m;                                                         \
            for (int g = 0; g < nb; g++)                                                        \
                for (int j = 0; j < m; j++)                                                     \
                    ob[g * m + j] = orig[j * B + g] >= thr[g];                                  \
        }                                                                                       \
        free(c); free(orig);                                                                    \
    }                                                                                           \
}                                                                                               \
/* compile-time M for the common sizes lets the compiler unroll the per-group loops */          \
static void NAME(const S *x, uint8_t *out, int64_t groups, int m, int n,                      \
                 const int32_t *net, int ncomp, int lines, int ib,                            \
                 int key_abs, int64_t key_mask) {                                             \
    switch (m) {                                                                                \
    case 4:  NAME##_body(x, out, groups, 4, n, net, ncomp, 4, 2, key_abs, key_mask); break;    \
    case 8:  NAME##_body(x, out, groups, 8, n, net, ncomp, 8, 3, key_abs, key_mask); break;    \
    case 16: NAME##_body(x, out, groups, 16, n, net, ncomp, 16, 4, key_abs, key_mask); break;  \
    case 32: NAME##_body(x, out, groups, 32, n, net, ncomp, 32, 5, key_abs, key_mask); break;  \
    default: NAME##_body(x, out, groups, m, n, net, ncomp, lines, ib, key_abs, key_mask);      \
    }                                                                                           \
}

DEFINE_KERNEL(k_i8, int8_t, int32_t)
DEFINE_KERNEL(k_i16, int16_t, int32_t)
DEFINE_KERNEL(k_i32, int32_t, int32_t)
DEFINE_KERNEL(k_i64, int64_t, int32_t)
DEFINE_KERNEL(k_f16, uint16_t, int32_t)
DEFINE_KERNEL(k_f32, uint32_t, int64_t)

enum { S_I8 = 0, S_I16 = 1, S_I32 = 2, S_I64 = 3, S_F16 = 4, S_F32 = 5 };

/* Integer inputs must already be range-checked to a format of at most 16 bits (|x| <= 2**15),
 * and m <= 1024, so int32 composites cannot overflow; fp32 uses int64 composites. */
int nm_mask(const void *x, uint8_t *out, int64_t groups, int m, int n, int storage,
            const int32_t *net, int ncomp, int lines, int ib, int key_abs, int64_t key_mask) {
    if (m < 2 || m > 1024 || n < 1 || n >= m || lines < m) return -1;
    /* the rule must fit the storage: signed integers take |x|, float bits the mask */
    if ((storage <= S_I64) != (key_abs != 0)) return -1;
#define ARGS out, groups, m, n, net, ncomp, lines, ib, key_abs, key_mask
    switch (storage) {
    case S_I8:  k_i8(x, ARGS); break;
    case S_I16: k_i16(x, ARGS); break;
    case S_I32: k_i32(x, ARGS); break;
    case S_I64: k_i64(x, ARGS); break;
    case S_F16: k_f16(x, ARGS); break;
    case S_F32: k_f32(x, ARGS); break;
    default: return -1;
    }
#undef ARGS
    return 0;
}
