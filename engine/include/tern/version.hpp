#pragma once
namespace tern {
inline constexpr const char kVersionString[] = "0.1.0";
inline constexpr int kFormatVersion = 1;  // the .tern weight-file format this build reads/writes
}  // namespace tern
