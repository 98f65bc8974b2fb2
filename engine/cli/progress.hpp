#pragma once
// A progress bar on stderr, shown only when stderr is a terminal and the work is long enough
// to be worth it (more than one input and more than half a second so far). A total of 0 means
// unknown (texts streaming from a file): a count is shown instead of a bar.
#include <unistd.h>

#include <chrono>
#include <cstdio>

namespace tern::cli {

class Progress {
 public:
  Progress(size_t total, bool enabled)
      : total_(total),
        enabled_(enabled && total != 1 && isatty(STDERR_FILENO)),
        start_(std::chrono::steady_clock::now()) {}
  void advance(size_t n) {
    done_ += n;
    if (!enabled_) return;
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    if (secs < 0.5) return;
    if (total_ == 0) {
      std::fprintf(stderr, "\r%zu done  %.1f/s ", done_, done_ / secs);
    } else {
      const int width = 30, filled = static_cast<int>(width * done_ / total_);
      std::fprintf(stderr, "\r[%.*s%*s] %zu/%zu  %.1f/s ", filled, "##############################",
                   width - filled, "", done_, total_, done_ / secs);
    }
    std::fflush(stderr);
    shown_ = true;
  }
  void clear() {
    if (shown_) std::fputs("\r\033[K", stderr);
    shown_ = false;
  }

 private:
  size_t total_, done_ = 0;
  bool enabled_, shown_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace tern::cli
