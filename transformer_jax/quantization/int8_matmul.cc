// y[n, o] = scale[o] * sum_i x[n, i] * w[i, o]: float32 activations, int8 weights [in, out]
// (Int8Matmul), or w[o, i] with weights [out, in] (Int8MatmulRows: the tied embedding
// table [V, D], whose rows are the output channels).
//
// The CPU kernel behind transformer_jax.quantization.int8_kernel (a jax.ffi custom call).
// Why: XLA's CPU backend converts int8 weights to float32 in memory before a dot (or runs
// the product on a slow integer path), so an int8 matmul streams more bytes than the
// float32 one; here each weight is read once as one byte and converted in registers.
// Output columns are cut into chunks (OpenMP threads take chunks); a chunk's accumulators
// for every row of x stay in L1 while the rows of w stream through. The compiler
// vectorises the inner loops (-O3 -march=native): int8 -> float32 conversion and FMA.

#include <algorithm>
#include <cstdint>
#include <cstring>

#include <immintrin.h>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int64_t kChunk = 64;  // Output columns a thread takes at a time.
constexpr int64_t kGroup = 8;   // Rows of x sharing one pass over a 16-column strip of w.

// y[0:kCount, start:start+kWidth] for kCount rows of x: kCount x kWidth accumulators,
// compile-time sizes so that they stay in vector registers.
template <int64_t kWidth, int64_t kCount>
inline void Tile(const float* x, const int8_t* w, const float* scale, float* y, int64_t in,
                 int64_t out, int64_t start) {
  float acc[kCount][kWidth] = {};
  for (int64_t i = 0; i < in; ++i) {
    const int8_t* row = w + i * out + start;
    float converted[kWidth];
#pragma omp simd
    for (int64_t o = 0; o < kWidth; ++o) converted[o] = static_cast<float>(row[o]);
    for (int64_t n = 0; n < kCount; ++n) {
      const float value = x[n * in + i];
#pragma omp simd
      for (int64_t o = 0; o < kWidth; ++o) acc[n][o] += value * converted[o];
    }
  }
  for (int64_t n = 0; n < kCount; ++n) {
    for (int64_t o = 0; o < kWidth; ++o) y[n * out + start + o] = acc[n][o] * scale[start + o];
  }
}

// Columns start .. start + width - 1 (a tail narrower than kChunk), any number of rows.
void Narrow(const float* x, const int8_t* w, const float* scale, float* y, int64_t rows,
            int64_t in, int64_t out, int64_t start, int64_t width) {
  for (int64_t n = 0; n < rows; ++n) {
    for (int64_t o = start; o < start + width; ++o) {
      float sum = 0.0f;
      for (int64_t i = 0; i < in; ++i) sum += x[n * in + i] * static_cast<float>(w[i * out + o]);
      y[n * out + o] = sum * scale[o];
    }
  }
}

#if defined(__AVX512F__)
// One row of x, one full chunk of 64 columns, written out with AVX-512 intrinsics:
// 16 int8 weights -> int32 -> float32 per instruction pair, two sets of four
// accumulators (even and odd input rows) so that eight FMA chains are in flight.
void ChunkOneRow(const float* x, const int8_t* w, const float* scale, float* y, int64_t in,
                 int64_t out, int64_t start) {
  __m512 a[2][4];
  for (int s = 0; s < 2; ++s)
    for (int k = 0; k < 4; ++k) a[s][k] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 1 < in; i += 2) {
    for (int s = 0; s < 2; ++s) {
      const int8_t* row = w + (i + s) * out + start;
      const __m512 value = _mm512_set1_ps(x[i + s]);
      for (int k = 0; k < 4; ++k) {
        const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 16 * k));
        a[s][k] = _mm512_fmadd_ps(value, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes)),
                                  a[s][k]);
      }
    }
  }
  for (; i < in; ++i) {
    const int8_t* row = w + i * out + start;
    const __m512 value = _mm512_set1_ps(x[i]);
    for (int k = 0; k < 4; ++k) {
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 16 * k));
      a[0][k] = _mm512_fmadd_ps(value, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes)),
                                a[0][k]);
    }
  }
  for (int k = 0; k < 4; ++k) {
    const __m512 sum = _mm512_add_ps(a[0][k], a[1][k]);
    _mm512_storeu_ps(y + start + 16 * k,
                     _mm512_mul_ps(sum, _mm512_loadu_ps(scale + start + 16 * k)));
  }
}
#elif defined(__AVX2__)
// The same with AVX2: 8 weights per instruction pair, eight accumulators of 8 lanes.
void ChunkOneRow(const float* x, const int8_t* w, const float* scale, float* y, int64_t in,
                 int64_t out, int64_t start) {
  __m256 a[8];
  for (int k = 0; k < 8; ++k) a[k] = _mm256_setzero_ps();
  for (int64_t i = 0; i < in; ++i) {
    const int8_t* row = w + i * out + start;
    const __m256 value = _mm256_set1_ps(x[i]);
    for (int k = 0; k < 8; ++k) {
      const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + 8 * k));
      a[k] = _mm256_fmadd_ps(value, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes)), a[k]);
    }
  }
  for (int k = 0; k < 8; ++k) {
    _mm256_storeu_ps(y + start + 8 * k,
                     _mm256_mul_ps(a[k], _mm256_loadu_ps(scale + start + 8 * k)));
  }
}
#endif

#if defined(__AVX512F__)
// kGroup rows of x, 16 columns: each 16 weights are converted once and serve all rows.
void StripRows(const float* x, const int8_t* w, const float* scale, float* y, int64_t in,
               int64_t out, int64_t start) {
  __m512 a[kGroup];
  for (int n = 0; n < kGroup; ++n) a[n] = _mm512_setzero_ps();
  for (int64_t i = 0; i < in; ++i) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i * out + start));
    const __m512 weights = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes));
    for (int n = 0; n < kGroup; ++n) {
      a[n] = _mm512_fmadd_ps(_mm512_set1_ps(x[n * in + i]), weights, a[n]);
    }
  }
  const __m512 factor = _mm512_loadu_ps(scale + start);
  for (int n = 0; n < kGroup; ++n) _mm512_storeu_ps(y + n * out + start, _mm512_mul_ps(a[n], factor));
}
#else
void StripRows(const float* x, const int8_t* w, const float* scale, float* y, int64_t in,
               int64_t out, int64_t start) {
  Tile<16, kGroup>(x, w, scale, y, in, out, start);
}
#endif

#if !defined(__AVX512F__) && !defined(__AVX2__)
void ChunkOneRow(const float* x, const int8_t* w, const float* scale, float* y, int64_t in,
                 int64_t out, int64_t start) {
  Tile<kChunk, 1>(x, w, scale, y, in, out, start);
}
#endif

void Columns(const float* x, const int8_t* w, const float* scale, float* y, int64_t rows,
             int64_t in, int64_t out, int64_t start) {
  const int64_t width = std::min(kChunk, out - start);
  if (width < kChunk) {
    Narrow(x, w, scale, y, rows, in, out, start, width);
    return;
  }
  int64_t n = 0;
  for (; n + kGroup <= rows; n += kGroup) {
    for (int64_t strip = 0; strip < kChunk; strip += 16) {
      StripRows(x + n * in, w, scale, y + n * out, in, out, start + strip);
    }
  }
  for (; n < rows; ++n) ChunkOneRow(x + n * in, w, scale, y + n * out, in, out, start);
}

ffi::Error Int8MatmulImpl(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::S8> w,
                          ffi::Buffer<ffi::F32> scale, ffi::ResultBuffer<ffi::F32> y) {
  const auto x_dims = x.dimensions();
  const auto w_dims = w.dimensions();
  if (x_dims.size() != 2 || w_dims.size() != 2 || x_dims[1] != w_dims[0] ||
      scale.element_count() != static_cast<size_t>(w_dims[1])) {
    return ffi::Error(ffi::ErrorCode::kInvalidArgument,
                      "int8_matmul: needs x [N, in], w [in, out], scale [out]");
  }
  const int64_t rows = x_dims[0], in = x_dims[1], out = w_dims[1];
  const int64_t chunks = (out + kChunk - 1) / kChunk;
  const float* xp = x.typed_data();
  const int8_t* wp = w.typed_data();
  const float* sp = scale.typed_data();
  float* yp = y->typed_data();
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) Columns(xp, wp, sp, yp, rows, in, out, c * kChunk);
  return ffi::Error::Success();
}

constexpr int64_t kRowBlock = 8;  // Rows of w [out, in] (outputs) dotted together.
constexpr int64_t kLanes = 16;    // Partial sums per output, kept in vector registers.

// y[n, first : first + kRowBlock] for every row n of x: kRowBlock independent
// accumulators of kLanes lanes hide the FMA latency; the lanes are summed at the end.
void RowBlock(const float* x, const int8_t* w, const float* scale, float* y, int64_t rows,
              int64_t in, int64_t out, int64_t first) {
#if defined(__AVX512F__)
  const int64_t whole = in - in % 16;
  for (int64_t n = 0; n < rows; ++n) {
    const float* xr = x + n * in;
    __m512 acc[kRowBlock];
    for (int r = 0; r < kRowBlock; ++r) acc[r] = _mm512_setzero_ps();
    for (int64_t i = 0; i < whole; i += 16) {
      const __m512 xv = _mm512_loadu_ps(xr + i);
      for (int r = 0; r < kRowBlock; ++r) {
        const __m128i bytes =
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + (first + r) * in + i));
        acc[r] = _mm512_fmadd_ps(xv, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes)), acc[r]);
      }
    }
    for (int r = 0; r < kRowBlock; ++r) {
      float sum = _mm512_reduce_add_ps(acc[r]);
      for (int64_t i = whole; i < in; ++i) {
        sum += xr[i] * static_cast<float>(w[(first + r) * in + i]);
      }
      y[n * out + first + r] = sum * scale[first + r];
    }
  }
#else
  const int64_t whole = in - in % kLanes;
  for (int64_t n = 0; n < rows; ++n) {
    const float* xr = x + n * in;
    float acc[kRowBlock][kLanes] = {};
    for (int64_t i = 0; i < whole; i += kLanes) {
      for (int64_t r = 0; r < kRowBlock; ++r) {
        const int8_t* wr = w + (first + r) * in + i;
#pragma omp simd
        for (int64_t l = 0; l < kLanes; ++l) acc[r][l] += xr[i + l] * static_cast<float>(wr[l]);
      }
    }
    for (int64_t r = 0; r < kRowBlock; ++r) {
      float sum = 0.0f;
      for (int64_t l = 0; l < kLanes; ++l) sum += acc[r][l];
      for (int64_t i = whole; i < in; ++i) {
        sum += xr[i] * static_cast<float>(w[(first + r) * in + i]);
      }
      y[n * out + first + r] = sum * scale[first + r];
    }
  }
#endif
}

// Weights [out, in]: each output is a dot of x with one contiguous row of w, so a wide
// matrix (the [V, D] embedding table) streams row by row instead of by strided columns.
ffi::Error Int8MatmulRowsImpl(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::S8> w,
                              ffi::Buffer<ffi::F32> scale, ffi::ResultBuffer<ffi::F32> y) {
  const auto x_dims = x.dimensions();
  const auto w_dims = w.dimensions();
  if (x_dims.size() != 2 || w_dims.size() != 2 || x_dims[1] != w_dims[1] ||
      scale.element_count() != static_cast<size_t>(w_dims[0])) {
    return ffi::Error(ffi::ErrorCode::kInvalidArgument,
                      "int8_matmul_rows: needs x [N, in], w [out, in], scale [out]");
  }
  const int64_t rows = x_dims[0], in = x_dims[1], out = w_dims[0];
  const float* xp = x.typed_data();
  const int8_t* wp = w.typed_data();
  const float* sp = scale.typed_data();
  float* yp = y->typed_data();
  const int64_t blocks = (out + kRowBlock - 1) / kRowBlock;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t first = b * kRowBlock;
    if (first + kRowBlock <= out) {
      RowBlock(xp, wp, sp, yp, rows, in, out, first);
      continue;
    }
    for (int64_t o = first; o < out; ++o) {
      for (int64_t n = 0; n < rows; ++n) {
        float sum = 0.0f;
        for (int64_t i = 0; i < in; ++i) sum += xp[n * in + i] * static_cast<float>(wp[o * in + i]);
        yp[n * out + o] = sum * sp[o];
      }
    }
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(TransformerJaxInt8MatmulRows, Int8MatmulRowsImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::S8>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(TransformerJaxInt8Matmul, Int8MatmulImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::S8>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());
