/* Fast path of the N:M selection rule (DESIGN.md section 1), for golden/nm.py.
 *
 * For each group of M elements: composite = key << ib | (M - 1 - j), unique within the group
 * and larger for the element that wins (larger key, or equal key and lower index). A sorting
 * network (pruned to what the N-th largest line depends on) runs over blocks of B groups laid
 * out column by column, so the compare-exchanges vectorize across groups. Element j is kept
 * iff its composite >= the N-th largest composite of its group. The network comes from Python.
 * Composites are signed (they stay below 2**62), so SSE2's signed compares suffice.
 *
 * Byte storage (int8, int4) with M in {2, 4, 8, 16, 32} has a second kernel (AVX-512 VBMI),
 * because the generic one is bound by its scalar transposition and 32-bit composites there:
 *
 *   64 groups x M bytes --(log2 M stages of vpermt2b)--> M registers, T[j] = element j of
 *   the 64 groups --(select)--> keep[j] as 0/1 bytes --(the same stages)--> natural layout
 *
 * The keys are |x| (or x & key_mask, the caller's rule) as unsigned bytes (|-128| = 128
 * fits), so no composite keys: ties are resolved explicitly. Select, M <= 16 (rank): for each
 * pair i < j one compare ge = key_i >= key_j adds to rank_j (the lower index wins ties) and
 * takes from rank_i (which starts at M - 1 - i); keep iff rank < N. M = 32 (radix): the N-th
 * largest key thr is found bit by bit (keep bit b iff N keys reach the candidate), then every
 * key > thr is kept and the first N - #{key > thr} keys equal to thr in index order. Both are
 * the rank rule exactly. Each stage swaps one bit of the register index with one bit of the
 * byte index, so the transposition is its own inverse. Trade-off: a kernel for byte storage
 * and power-of-two M only (every other case takes the generic kernel).
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

#if defined(__AVX512BW__) && defined(__AVX512VBMI__)
#include <immintrin.h>
#define HAVE_BYTE_KERNEL 1

/* index vectors of stage s: lo takes byte-index bit s = 0 of both registers, hi bit s = 1 */
static void stage_index(int s, __m512i *lo, __m512i *hi) {
    uint8_t a[64], b[64];
    for (int i = 0; i < 64; i++) {
        int src = ((i >> s) & 1) ? 64 : 0;
        a[i] = (uint8_t)(src + (i & ~(1 << s)));
        b[i] = (uint8_t)(src + (i | (1 << s)));
    }
    *lo = _mm512_loadu_si512(a);
    *hi = _mm512_loadu_si512(b);
}

/* one stage: swap bit s of the register index with bit s of the byte index */
#define STAGE(t, M, s, ilo, ihi)                                                             \
    for (int a = 0; a < M; a++)                                                                \
        if (!(a & (1 << (s)))) {                                                               \
            __m512i A = t[a], Bv = t[a | (1 << (s))];                                          \
            t[a] = _mm512_permutex2var_epi8(A, ilo[s], Bv);                                    \
            t[a | (1 << (s))] = _mm512_permutex2var_epi8(A, ihi[s], Bv);                       \
        }

/* small M: rank_j = #{i < j: key_i >= key_j} + #{i > j: key_i > key_j}, pair by pair */
#define RANK_SELECT(t, M, n, one)                                                            \
    {                                                                                          \
        __m512i r[M];                                                                          \
        _Pragma("GCC unroll 32")                                                               \
        for (int j = 0; j < M; j++) r[j] = _mm512_set1_epi8((char)(M - 1 - j));                \
        _Pragma("GCC unroll 32")                                                               \
        for (int i = 0; i < M; i++)                                                            \
            _Pragma("GCC unroll 32")                                                           \
            for (int j = i + 1; j < M; j++) { /* r[i] starts at #{j > i} and loses each ge */  \
                __mmask64 ge = _mm512_cmpge_epu8_mask(t[i], t[j]);                             \
                r[j] = _mm512_mask_add_epi8(r[j], ge, r[j], one);                              \
                r[i] = _mm512_mask_sub_epi8(r[i], ge, r[i], one);                              \
            }                                                                                  \
        const __m512i nv = _mm512_set1_epi8((char)(n));                                        \
        _Pragma("GCC unroll 32")                                                               \
        for (int j = 0; j < M; j++)                                                            \
            t[j] = _mm512_maskz_mov_epi8(_mm512_cmplt_epu8_mask(r[j], nv), one);               \
    }

/* large M: the n-th largest key thr by radix select (bit by bit, from the block's top bit),
 * then every key > thr and the first n - #{key > thr} keys == thr in index order */
#define RADIX_SELECT(t, M, n, one)                                                           \
    {                                                                                          \
        __m512i any = t[0];                                                                    \
        _Pragma("GCC unroll 32")                                                               \
        for (int j = 1; j < M; j++) any = _mm512_or_si512(any, t[j]);                          \
        uint64_t o = (uint64_t)_mm512_reduce_or_epi64(any);                                    \
        o |= o >> 32; o |= o >> 16; o |= o >> 8;                                               \
        const int top = (o & 0xff) ? 31 - __builtin_clz((unsigned)(o & 0xff)) : -1;            \
        const __m512i nv = _mm512_set1_epi8((char)(n));                                        \
        __m512i thr = _mm512_setzero_si512();                                                  \
        for (int b = top; b >= 0; b--) { /* keep bit b if n keys still reach the candidate */  \
            __m512i cand = _mm512_or_si512(thr, _mm512_set1_epi8((char)(1 << b)));             \
            /* four chains of adds: the bits are serial, so the latency counts */              \
            __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0;                    \
            _Pragma("GCC unroll 32")                                                           \
            for (int j = 0; j < M; j += 4) {                                                   \
                c0 = _mm512_mask_add_epi8(c0, _mm512_cmpge_epu8_mask(t[j], cand), c0, one);    \
                c1 = _mm512_mask_add_epi8(c1, _mm512_cmpge_epu8_mask(t[j + 1], cand), c1, one);\
                c2 = _mm512_mask_add_epi8(c2, _mm512_cmpge_epu8_mask(t[j + 2], cand), c2, one);\
                c3 = _mm512_mask_add_epi8(c3, _mm512_cmpge_epu8_mask(t[j + 3], cand), c3, one);\
            }                                                                                  \
            __m512i cnt = _mm512_add_epi8(_mm512_add_epi8(c0, c1), _mm512_add_epi8(c2, c3));   \
            thr = _mm512_mask_mov_epi8(thr, _mm512_cmpge_epu8_mask(cnt, nv), cand);            \
        }                                                                                      \
        __mmask64 gt[M];                                                                       \
        __m512i cnt = nv; /* n - #{key > thr}: how many ties at thr to keep */                 \
        _Pragma("GCC unroll 32")                                                               \
        for (int j = 0; j < M; j++) {                                                          \
            gt[j] = _mm512_cmpgt_epu8_mask(t[j], thr);                                         \
            cnt = _mm512_mask_sub_epi8(cnt, gt[j], cnt, one);                                  \
        }                                                                                      \
        __m512i before = _mm512_setzero_si512(); /* ties at thr among the lower indices */    \
        _Pragma("GCC unroll 32")                                                               \
        for (int j = 0; j < M; j++) {                                                          \
            __mmask64 eq = _mm512_cmpeq_epu8_mask(t[j], thr);                                  \
            __mmask64 take = _mm512_mask_cmplt_epu8_mask(eq, before, cnt);                     \
            before = _mm512_mask_add_epi8(before, eq, before, one);                            \
            t[j] = _mm512_maskz_mov_epi8(gt[j] | take, one);                                   \
        }                                                                                      \
    }

#define DEFINE_BYTE_KERNEL(M, LOG, SELECT, UNROLL)                                           \
static inline __attribute__((always_inline))                                                  \
void byte_block_##M(const int8_t *x, uint8_t *out, int n, int key_abs, uint8_t key_mask,      \
                    const __m512i *ilo, const __m512i *ihi) {                                 \
    __m512i t[M];                                                                              \
    const __m512i one = _mm512_set1_epi8(1), km = _mm512_set1_epi8((char)key_mask);            \
    _Pragma("GCC unroll 32")                                                                   \
    for (int k = 0; k < M; k++) {                                                              \
        __m512i v = _mm512_loadu_si512(x + 64 * k);                                            \
        t[k] = key_abs ? _mm512_abs_epi8(v) : _mm512_and_si512(v, km);                         \
    }                                                                                          \
    _Pragma(UNROLL)                                                                            \
    for (int s = 0; s < LOG; s++) { _Pragma(UNROLL) STAGE(t, M, s, ilo, ihi) }                 \
    SELECT(t, M, n, one)                                                                       \
    _Pragma(UNROLL)                                                                            \
    for (int s = 0; s < LOG; s++) { _Pragma(UNROLL) STAGE(t, M, s, ilo, ihi) }                 \
    _Pragma("GCC unroll 32")                                                                   \
    for (int k = 0; k < M; k++) _mm512_storeu_si512(out + 64 * k, t[k]);                       \
}                                                                                              \
static void byte_kernel_##M(const int8_t *x, uint8_t *out, int64_t groups, int n,             \
                            int key_abs, uint8_t key_mask) {                                   \
    __m512i ilo[LOG], ihi[LOG];                                                                \
    for (int s = 0; s < LOG; s++) stage_index(s, &ilo[s], &ihi[s]);                            \
    const int64_t full = groups / 64, blk = 64 * (int64_t)M;                                   \
    _Pragma("omp parallel for schedule(static) if (full >= 64)")                               \
    for (int64_t b = 0; b < full; b++)                                                         \
        byte_block_##M(x + b * blk, out + b * blk, n, key_abs, key_mask, ilo, ihi);            \
    int64_t rest = (groups - full * 64) * M;                                                   \
    if (rest) { /* the last groups through a zero-padded block */                              \
        int8_t xin[64 * M];                                                                    \
        uint8_t o[64 * M];                                                                     \
        memset(xin, 0, sizeof xin);                                                            \
        memcpy(xin, x + full * blk, (size_t)rest);                                             \
        byte_block_##M(xin, o, n, key_abs, key_mask, ilo, ihi);                                \
        memcpy(out + full * blk, o, (size_t)rest);                                             \
    }                                                                                          \
}

/* measured (core cycles per element, L2-resident, one core of an Ice Lake Xeon):
 * rank 0.20 / 0.31 / 0.49 for M = 4 / 8 / 16, radix 0.68 for M = 32 (rank: 0.86) */
DEFINE_BYTE_KERNEL(2, 1, RANK_SELECT, "GCC unroll 32")
DEFINE_BYTE_KERNEL(4, 2, RANK_SELECT, "GCC unroll 32")
DEFINE_BYTE_KERNEL(8, 3, RANK_SELECT, "GCC unroll 32")
DEFINE_BYTE_KERNEL(16, 4, RANK_SELECT, "GCC unroll 32")
DEFINE_BYTE_KERNEL(32, 5, RADIX_SELECT, "GCC unroll 32")

/* 1 when the byte kernel handled the call, 0 when the generic kernel must */
static int byte_kernel(const int8_t *x, uint8_t *out, int64_t groups, int m, int n,
                       int key_abs, int64_t key_mask) {
    uint8_t km = (uint8_t)key_mask;
    switch (m) {
    case 2:  byte_kernel_2(x, out, groups, n, key_abs, km); return 1;
    case 4:  byte_kernel_4(x, out, groups, n, key_abs, km); return 1;
    case 8:  byte_kernel_8(x, out, groups, n, key_abs, km); return 1;
    case 16: byte_kernel_16(x, out, groups, n, key_abs, km); return 1;
    case 32: byte_kernel_32(x, out, groups, n, key_abs, km); return 1;
    default: return 0;
    }
}
#endif

/* which kernel a call takes: 1 the byte kernel, 0 the generic one (for the tests) */
int nm_mask_kernel(int m, int storage) {
#ifdef HAVE_BYTE_KERNEL
    return storage == 0 && (m == 2 || m == 4 || m == 8 || m == 16 || m == 32);
#else
    (void)m; (void)storage;
    return 0;
#endif
}

enum { S_I8 = 0, S_I16 = 1, S_I32 = 2, S_I64 = 3, S_F16 = 4, S_F32 = 5 };

/* Integer inputs must already be range-checked to a format of at most 16 bits (|x| <= 2**15),
 * and m <= 1024, so int32 composites cannot overflow; fp32 uses int64 composites. */
int nm_mask(const void *x, uint8_t *out, int64_t groups, int m, int n, int storage,
            const int32_t *net, int ncomp, int lines, int ib, int key_abs, int64_t key_mask) {
    if (m < 2 || m > 1024 || n < 1 || n >= m || lines < m) return -1;
    /* the rule must fit the storage: signed integers take |x|, float bits the mask */
    if ((storage <= S_I64) != (key_abs != 0)) return -1;
#define ARGS out, groups, m, n, net, ncomp, lines, ib, key_abs, key_mask
#ifdef HAVE_BYTE_KERNEL
    if (storage == S_I8 && byte_kernel(x, out, groups, m, n, key_abs, key_mask)) return 0;
#endif
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

/* Lower median of each row of x: [rows, k] float32 (the element of rank (k - 1) / 2 in
 * ascending order, as torch.median), for the D-PTS shift of golden.llm.mitigations. A row
 * holding a NaN gets NaN (torch.median propagates it). Radix select over order-preserving
 * 32-bit keys of the floats, a byte at a time from the top (histogram, then keep the bucket
 * holding the rank): about 2k + 1k simple operations per row, no data-dependent branches in
 * the histogram pass; rows in parallel. -0 ranks below +0 here (torch compares them equal:
 * the value is the same number either way). */
static inline uint32_t order_key(uint32_t u) { return (u & 0x80000000u) ? ~u : (u | 0x80000000u); }

int row_median_f32(const float *x, float *out, int64_t rows, int k) {
    if (k < 1) return -1;
    _Pragma("omp parallel if (rows >= 64)")
    {
        uint32_t *buf = (uint32_t *)malloc(sizeof(uint32_t) * (size_t)k);
        _Pragma("omp for schedule(static)")
        for (int64_t r = 0; r < rows; r++) {
            const uint32_t *row = (const uint32_t *)(x + r * k);
            int nan = 0;
            for (int j = 0; j < k; j++) {
                uint32_t u = row[j];
                nan |= (u & 0x7fffffffu) > 0x7f800000u;
                buf[j] = order_key(u);
            }
            if (nan) { out[r] = __builtin_nanf(""); continue; }
            int cnt = k, rank = (k - 1) / 2;
            uint32_t key = 0;
            for (int shift = 24; shift >= 0; shift -= 8) {
                int hist[256] = {0};
                for (int j = 0; j < cnt; j++) hist[(buf[j] >> shift) & 0xff]++;
                int b = 0;
                while (rank >= hist[b]) rank -= hist[b++];
                int w = 0;
                for (int j = 0; j < cnt; j++)
                    if (((buf[j] >> shift) & 0xff) == (uint32_t)b) buf[w++] = buf[j];
                cnt = w;
                key = buf[0];
                if (hist[b] == 1) break;
            }
            uint32_t u = (key & 0x80000000u) ? (key & 0x7fffffffu) : ~key;
            memcpy(&out[r], &u, sizeof u);
        }
        free(buf);
    }
    return 0;
}
