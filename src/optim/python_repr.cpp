// Python's repr of floats and of the lists DeepSpeed prints in its log lines
// ("lr=[0.001], mom=[(0.9, 0.999)]"), so that our logs read the same as DeepSpeed's.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "deepspeed/optimizer.h"

namespace deepspeed {

std::string python_repr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  if (value == 0.0) return std::signbit(value) ? "-0.0" : "0.0";

  // The shortest digits that round-trip (what Python's repr uses too), then Python's
  // layout: positional when -4 < decimal exponent <= 16, else d.ddde±XX.
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), std::abs(value),
                                    std::chars_format::scientific);
  const std::string scientific(buffer, result.ptr);
  const size_t e = scientific.find('e');
  std::string digits = scientific.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int exponent = std::atoi(scientific.c_str() + e + 1);
  const int point = exponent + 1;  // value = 0.<digits> * 10^point
  const int count = static_cast<int>(digits.size());

  std::string text = value < 0 ? "-" : "";
  if (point > -4 && point <= 16) {
    if (point <= 0) {
      text += "0." + std::string(-point, '0') + digits;
    } else if (point >= count) {
      text += digits + std::string(point - count, '0') + ".0";
    } else {
      text += digits.substr(0, point) + "." + digits.substr(point);
    }
  } else {
    text += digits.substr(0, 1);
    if (count > 1) text += "." + digits.substr(1);
    const int shown = point - 1;
    text += shown < 0 ? "e-" : "e+";
    const std::string magnitude = std::to_string(std::abs(shown));
    text += (magnitude.size() < 2 ? "0" : "") + magnitude;
  }
  return text;
}

std::string python_repr(const std::vector<double>& values) {
  std::string text = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) text += ", ";
    text += python_repr(values[i]);
  }
  return text + "]";
}

std::string python_repr(const std::vector<GroupMomentum>& values) {
  std::string text = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) text += ", ";
    if (values[i].is_pair) {
      text += "(" + python_repr(values[i].values[0]) + ", " + python_repr(values[i].values[1]) + ")";
    } else {
      text += python_repr(values[i].values[0]);
    }
  }
  return text + "]";
}

}  // namespace deepspeed
