#include "progress_bar.h"

#include <cstdio>

#include <unistd.h>

namespace cifar10 {
namespace {

constexpr int kWidth = 30;
constexpr auto kRedrawEvery = std::chrono::milliseconds(100);

}  // namespace

ProgressBar::ProgressBar(bool enabled, int64_t total, std::string label)
    : active_(enabled && total > 0 && isatty(STDOUT_FILENO)),
      total_(total),
      label_(std::move(label)),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_ - kRedrawEvery) {}

ProgressBar::~ProgressBar() { clear(); }

void ProgressBar::update(int64_t done) {
  if (!active_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < kRedrawEvery && done < total_) return;
  last_draw_ = now;
  draw(done);
}

void ProgressBar::draw(int64_t done) {
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
  const int filled = static_cast<int>(kWidth * done / total_);
  std::string bar(static_cast<std::size_t>(filled), '=');
  if (filled < kWidth) bar += '>' + std::string(static_cast<std::size_t>(kWidth - filled - 1), ' ');
  const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
  std::printf("\r\033[K%s [%s] %lld/%lld %.1f it/s eta %.0fs", label_.c_str(), bar.c_str(),
              static_cast<long long>(done), static_cast<long long>(total_), rate, eta);
  std::fflush(stdout);
  drawn_ = true;
}

void ProgressBar::clear() {
  if (!drawn_) return;
  std::printf("\r\033[K");
  std::fflush(stdout);
  drawn_ = false;
  last_draw_ = std::chrono::steady_clock::now() - kRedrawEvery;
}

}  // namespace cifar10
