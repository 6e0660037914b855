#include "launcher/hostfile.h"

#include <fmt/format.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <string_view>

#include "deepspeed/errors.h"
#include "launcher/printable_text.h"

namespace deepspeed::launcher {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string strip(const std::string& s) {
  const char* ws = " \t\r\n\f\v";
  auto b = s.find_first_not_of(ws);
  if (b == std::string::npos) return {};
  auto e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

struct Entry {
  std::string_view host;
  std::string_view slots;  // digits
};

// DeepSpeed's re.search(r"^(\S+)\s+slots=(\d+)", line): a prefix match, trailing text
// ignored. By hand, not std::regex: libstdc++'s matcher recurses once per character and
// overflowed the stack on a long line (a 200 KB line crashed the launcher; found by
// tests/fuzz/fuzz_hostfile.cpp).
std::optional<Entry> match_entry(std::string_view line) {
  size_t i = 0;
  while (i < line.size() && !is_space(line[i])) ++i;
  if (i == 0) return std::nullopt;
  size_t j = i;
  while (j < line.size() && is_space(line[j])) ++j;
  constexpr std::string_view kSlots = "slots=";
  if (j == i || line.substr(j, kSlots.size()) != kSlots) return std::nullopt;
  j += kSlots.size();
  size_t k = j;
  while (k < line.size() && is_digit(line[k])) ++k;
  if (k == j) return std::nullopt;
  return Entry{line.substr(0, i), line.substr(j, k - j)};
}

}  // namespace

HostPool parse_hostfile(std::istream& in, const std::string& path) {
  HostPool pool;
  std::string raw;
  int line_no = 0;
  while (std::getline(in, raw)) {
    ++line_no;
    const std::string line = strip(raw);
    if (line.empty() || line[0] == '#') continue;
    const auto entry = match_entry(line);
    if (!entry) {
      throw LaunchError(fmt::format(
          "{}:{}: Hostfile contains a bad entry: '{}', unable to proceed with launching "
          "(expected 'HOSTNAME slots=N')",
          path, line_no, printable_text(line)));
    }
    const std::string host(entry->host);
    // DeepSpeed's \S+ takes them, but a NUL would cut the name short in every command line
    // it goes to (ssh would reach another host), and no host name holds control bytes.
    for (const char c : host) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        throw LaunchError(fmt::format("{}:{}: host name '{}' holds control bytes (is this a hostfile?)", path,
                                      line_no, printable_text(host)));
      }
    }
    int slots = 0;
    const auto [end, ec] = std::from_chars(entry->slots.data(), entry->slots.data() + entry->slots.size(), slots);
    if (ec != std::errc() || slots > kMaxSlotsPerHost) {
      throw LaunchError(fmt::format("{}:{}: slots={} is out of range for host '{}' (at most {} slots per host)", path,
                                    line_no, entry->slots, printable_text(host), kMaxSlotsPerHost));
    }
    for (const auto& h : pool) {
      if (h.host == host) {
        throw LaunchError(fmt::format(
            "{}:{}: Hostfile contains multiple entries for {}, unable to proceed with launching",
            path, line_no, printable_text(host)));
      }
    }
    pool.push_back({host, slots});
  }
  if (pool.empty()) {
    throw LaunchError(fmt::format(
        "{}: Hostfile is empty or not formatted correctly, unable to proceed with launching.",
        path));
  }
  return pool;
}

std::optional<HostPool> read_hostfile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  std::ifstream in(path);
  if (!in) throw LaunchError(fmt::format("{}: cannot read hostfile", path));
  return parse_hostfile(in, path);
}

}  // namespace deepspeed::launcher
