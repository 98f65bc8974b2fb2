// Winograd F(4,3) and F(2,3): ISA dispatch and the filter transform (done once at pack time, in
// double).
#include "kernels/conv/winograd_config.hpp"

namespace tern::conv {

const WinogradConfig& winograd_config(Isa isa) {
  switch (isa) {
    case Isa::avx512: return winograd_config_avx512();
    case Isa::avx2: return winograd_config_avx2();
    case Isa::scalar: break;
  }
  return winograd_config_scalar();
}

void winograd_filter_transform(int m, const float* g, double* u) {
  static const double G4[6][3] = {{1.0 / 4, 0, 0},
                                  {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                  {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                  {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                  {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                  {0, 0, 1}};
  static const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  const int A = m == 2 ? 4 : 6;
  const double(*G)[3] = m == 2 ? G2 : G4;
  double t[6][3];  // G g
  for (int i = 0; i < A; ++i)
    for (int j = 0; j < 3; ++j)
      t[i][j] = G[i][0] * g[0 * 3 + j] + G[i][1] * g[1 * 3 + j] + G[i][2] * g[2 * 3 + j];
  for (int i = 0; i < A; ++i)  // (G g) Gᵀ
    for (int k = 0; k < A; ++k)
      u[A * i + k] = t[i][0] * G[k][0] + t[i][1] * G[k][1] + t[i][2] * G[k][2];
}

}  // namespace tern::conv
