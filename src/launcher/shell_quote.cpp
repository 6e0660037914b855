#include "launcher/shell_quote.h"

#include "deepspeed/errors.h"

namespace deepspeed::launcher {

bool is_shell_safe(std::string_view word) {
  if (word.empty()) return false;
  for (unsigned char c : word) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '@' || c == '%' || c == '+' || c == '=' || c == ':' ||
                    c == ',' || c == '.' || c == '/' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string shell_quote(std::string_view word) {
  if (is_shell_safe(word)) return std::string(word);
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += "'";
  return out;
}

std::string shell_join(const std::vector<std::string>& words) {
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i) out += ' ';
    out += shell_quote(words[i]);
  }
  return out;
}

std::vector<std::string> shell_split(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) out.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else if (c == '\'') {
      auto end = text.find('\'', i + 1);
      if (end == std::string_view::npos)
        throw LaunchError("--launcher_args: unterminated single quote in '" + std::string(text) + "'");
      cur.append(text.substr(i + 1, end - i - 1));
      i = end;
      in_word = true;
    } else if (c == '"') {
      size_t j = i + 1;
      for (; j < text.size() && text[j] != '"'; ++j) {
        if (text[j] == '\\' && j + 1 < text.size() &&
            (text[j + 1] == '"' || text[j + 1] == '\\' || text[j + 1] == '$' || text[j + 1] == '`'))
          ++j;
        cur += text[j];
      }
      if (j >= text.size())
        throw LaunchError("--launcher_args: unterminated double quote in '" + std::string(text) + "'");
      i = j;
      in_word = true;
    } else if (c == '\\' && i + 1 < text.size()) {
      cur += text[++i];
      in_word = true;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (in_word) out.push_back(std::move(cur));
  return out;
}

}  // namespace deepspeed::launcher
