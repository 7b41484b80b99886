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
      Tile<16, kGroup>(x + n * in, w, scale, y + n * out, in, out, start + strip);
    }
  }
  for (; n < rows; ++n) Tile<kChunk, 1>(x + n * in, w, scale, y + n * out, in, out, start);
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
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < out; ++o) {
    const int8_t* row = wp + o * in;
    for (int64_t n = 0; n < rows; ++n) {
      const float* xr = xp + n * in;
      float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
      for (int64_t i = 0; i < in; ++i) sum += xr[i] * static_cast<float>(row[i]);
      yp[n * out + o] = sum * sp[o];
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
