#pragma once
// Constants of the vector math bodies (vec_math_impl.hpp), so every ISA evaluates the same
// approximation.
//
// exp(x): n = round(x·log2 e), r = x - n·ln2 (Cody-Waite, two constants), e^r by its degree-7
//   Taylor polynomial (truncation < 6e-9 relative on |r| <= ln2/2), times 2^n. Accuracy: a few ulp
//   for results in the normal range; results below FLT_MIN may flush to 0; overflow gives +inf.
// erf(x): |x| < 0.875: x·P(x²), P a degree-5 least-squares fit (about 3 ulp).
//   0.875 <= |x| < 4: 1 - erfc(|x|) with erfc(z) = exp(-z²)·G(z - 2.5), G a degree-11 fit of
//   erfc(z)·exp(z²) (relative error about 2e-7); z² is split into hi + lo with an FMA so exp(-z²)
//   keeps full precision. |x| >= 4: ±1 (erf(3.92) already rounds to 1 in float).
// gelu(x) = x·Φ(x), Φ(x) = ½(1 + erf(x/√2)); for x/√2 <= -0.875 Φ = ½·erfc(|x|/√2) directly, so
//   the negative tail keeps its relative accuracy. Absolute error < 1e-6 for every finite x.
// The coefficients were fitted for this project (numpy least squares on Chebyshev nodes).

namespace tern::vmath {

inline constexpr float kLog2e = 1.44269504088896341f;
inline constexpr float kLn2Hi = 0.693359375f;  // few mantissa bits: n·kLn2Hi is exact
inline constexpr float kLn2Lo = -2.12194440e-4f;
inline constexpr float kExpMaxX = 89.0f;    // exp overflows to inf well before this
inline constexpr float kExpMinX = -104.0f;  // exp underflows to 0 well after this
inline constexpr float kExpTaylor[8] = {1.f / 5040, 1.f / 720, 1.f / 120, 1.f / 24,
                                        1.f / 6,    0.5f,      1.f,       1.f};  // highest first

inline constexpr float kErfSplit = 0.875f;
inline constexpr float kErfTailEnd = 4.0f;
inline constexpr float kErfSmall[6] = {-0.0006218503f, 0.0050351224f, -0.026793452f, 0.1128251f,
                                       -0.37612554f,   1.1283791f};  // in x², highest first
inline constexpr float kErfcCenter = 2.5f;
inline constexpr float kErfcTail[12] = {-5.4057847e-07f, 1.7181211e-06f,  -3.0570825e-06f,
                                        1.4095912e-05f,  -6.1029372e-05f, 0.00021346884f,
                                        -0.0007317295f,  0.002465597f,    -0.008002236f,
                                        0.024938306f,    -0.07434728f,    0.21080635f};  // in z-2.5
inline constexpr float kInvSqrt2 = 0.70710678118654752f;

}  // namespace tern::vmath
