#include "config/json_reader.h"

#include <cstdint>
#include <iterator>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <deepspeed/errors.h>

namespace deepspeed::config_detail {

std::optional<TextLocation> KeyLocations::find(const std::string& path) const {
  auto it = where_.find(path);
  if (it == where_.end()) return std::nullopt;
  return it->second;
}

std::string KeyLocations::describe(const std::string& path) const {
  // Walk up "a.b[2].c" → "a.b[2]" → "a.b" → "a" until a written key is found: a derived
  // key (say, a default) is best pointed at through its section.
  std::string p = path;
  while (!p.empty()) {
    if (auto where = find(p)) return fmt::format("{}:{}:{}", source_, where->line, where->column);
    const auto cut = p.find_last_of(".[");
    if (cut == std::string::npos) break;
    p.resize(cut);
  }
  return {};
}

TextLocation location_of(const std::string& text, std::size_t offset) {
  if (offset > text.size()) offset = text.size();
  TextLocation where;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++where.line;
      line_start = i + 1;
    }
  }
  where.column = offset - line_start + 1;
  return where;
}

namespace {

// A char iterator that remembers the offset of the last character the parser read. The
// SAX interface reports no positions, but nlohmann's lexer reads through the iterator one
// character at a time and never reads ahead of a string token, so when `key()` arrives the
// last character read is the key's closing quote.
class TrackingIterator {
 public:
  using iterator_category = std::forward_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  TrackingIterator() = default;
  TrackingIterator(const char* at, const char* begin, std::size_t* last_read)
      : at_(at), begin_(begin), last_read_(last_read) {}

  reference operator*() const {
    *last_read_ = static_cast<std::size_t>(at_ - begin_);
    return *at_;
  }
  TrackingIterator& operator++() {
    ++at_;
    return *this;
  }
  TrackingIterator operator++(int) {
    TrackingIterator before = *this;
    ++at_;
    return before;
  }
  bool operator==(const TrackingIterator& other) const { return at_ == other.at_; }

 private:
  const char* at_ = nullptr;
  const char* begin_ = nullptr;
  std::size_t* last_read_ = nullptr;
};

struct Duplicate {
  std::string path;
  TextLocation where;
  TextLocation first;
};

// Builds the DOM like nlohmann's own SAX DOM parser, and on the way records where each key
// was written and which keys repeat within one object.
class LocatingDomBuilder {
 public:
  using json = nlohmann::json;

  LocatingDomBuilder(const std::string& text, const std::size_t& last_read, KeyLocations& locations)
      : text_(text), last_read_(last_read), locations_(locations) {}

  bool null() { return add(json(nullptr)); }
  bool boolean(bool v) { return add(json(v)); }
  bool number_integer(json::number_integer_t v) { return add(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return add(json(v)); }
  bool number_float(json::number_float_t v, const json::string_t&) { return add(json(v)); }
  bool string(json::string_t& v) { return add(json(std::move(v))); }
  bool binary(json::binary_t& v) { return add(json::binary(std::move(v))); }

  bool start_object(std::size_t) { return open(json::object()); }
  bool end_object() { return close(); }
  bool start_array(std::size_t) { return open(json::array()); }
  bool end_array() { return close(); }

  bool key(json::string_t& name) {
    Frame& frame = stack_.back();
    const std::string path = frame.path.empty() ? name : frame.path + "." + name;
    const TextLocation where = location_of(text_, opening_quote(last_read_));
    auto [first, inserted] = frame.seen.emplace(name, where);
    if (inserted) {
      locations_.record(path, where);
    } else {
      duplicates_.push_back({path, where, first->second});
    }
    frame.pending_key = std::move(name);
    return true;
  }

  bool parse_error(std::size_t position, const std::string& last_token, const nlohmann::detail::exception& e) {
    error_offset_ = position == 0 ? 0 : position - 1;  // `position` counts characters read
    // An unexpected string has been read whole; point at its start, where the reader looks.
    if (!last_token.empty() && last_token.front() == '"' && error_offset_ < text_.size() &&
        text_[error_offset_] == '"' && last_token.size() > 1) {
      error_offset_ = opening_quote(error_offset_);
    }
    error_text_ = e.what();
    return false;
  }

  json& result() { return root_; }
  const std::vector<Duplicate>& duplicates() const { return duplicates_; }
  std::size_t error_offset() const { return error_offset_; }
  const std::string& error_text() const { return error_text_; }

 private:
  struct Frame {
    json* container;
    std::string path;
    std::map<std::string, TextLocation> seen;  // objects: first location of each key
    std::string pending_key;                   // objects: the key whose value comes next
    std::size_t next_index = 0;                // arrays
  };

  // Offset of the opening quote of the string whose closing quote is at `close`.
  std::size_t opening_quote(std::size_t close) const {
    for (std::size_t i = close; i-- > 0;) {
      if (text_[i] != '"') continue;
      std::size_t backslashes = 0;
      while (backslashes < i && text_[i - 1 - backslashes] == '\\') ++backslashes;
      if (backslashes % 2 == 0) return i;
    }
    return close;
  }

  // Places `value` where the parser is (root, next array element, or the pending key) and
  // returns it together with its path.
  std::pair<json*, std::string> place(json&& value) {
    if (stack_.empty()) {
      root_ = std::move(value);
      return {&root_, std::string()};
    }
    Frame& frame = stack_.back();
    if (frame.container->is_array()) {
      frame.container->push_back(std::move(value));
      std::string path = fmt::format("{}[{}]", frame.path, frame.next_index++);
      return {&frame.container->back(), std::move(path)};
    }
    json& slot = (*frame.container)[frame.pending_key];
    slot = std::move(value);
    std::string path = frame.path.empty() ? frame.pending_key : frame.path + "." + frame.pending_key;
    return {&slot, std::move(path)};
  }

  bool add(json&& value) {
    place(std::move(value));
    return true;
  }
  bool open(json&& container) {
    auto [where, path] = place(std::move(container));
    stack_.push_back(Frame{where, std::move(path), {}, {}, 0});
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }

  const std::string& text_;
  const std::size_t& last_read_;
  KeyLocations& locations_;
  json root_;
  std::vector<Frame> stack_;
  std::vector<Duplicate> duplicates_;
  std::size_t error_offset_ = 0;
  std::string error_text_;
};

// nlohmann's messages look like "[json.exception.parse_error.101] parse error at line L,
// column C: syntax error while parsing object - ..."; keep only the description, since we
// report the position ourselves.
std::string syntax_error_detail(std::string what) {
  auto strip_prefix = [&what](std::string_view prefix, std::string_view until) {
    if (what.rfind(prefix, 0) != 0) return;
    if (auto at = what.find(until); at != std::string::npos) what.erase(0, at + until.size());
  };
  strip_prefix("[json.exception.", "] ");
  strip_prefix("parse error", ": ");
  strip_prefix("syntax error ", "syntax error ");
  return what;
}

std::string format_location(const KeyLocations& locations, TextLocation where) {
  return fmt::format("{}:{}:{}", locations.source(), where.line, where.column);
}

}  // namespace

ParsedJson read_json(const std::string& text, const std::string& source) {
  ParsedJson parsed{nlohmann::json(), KeyLocations(source)};
  std::size_t last_read = 0;
  LocatingDomBuilder builder(text, last_read, parsed.locations);
  const char* begin = text.data();
  TrackingIterator first(begin, begin, &last_read);
  TrackingIterator last(begin + text.size(), begin, &last_read);
  const bool ok = nlohmann::json::sax_parse(first, last, &builder, nlohmann::json::input_format_t::json,
                                            /*strict=*/true, /*ignore_comments=*/true);
  if (!ok) {
    const TextLocation where = location_of(text, builder.error_offset());
    throw ConfigError("", fmt::format("{}: syntax error: {}", format_location(parsed.locations, where),
                                      syntax_error_detail(builder.error_text())));
  }
  const auto& duplicates = builder.duplicates();
  if (!duplicates.empty()) {
    // DeepSpeed reports every duplicate at once; so do we, each with both locations.
    auto describe = [&](const Duplicate& d) {
      return fmt::format("at {} (first given at {})", format_location(parsed.locations, d.where),
                         format_location(parsed.locations, d.first));
    };
    std::string message = "duplicate key " + describe(duplicates.front());
    for (std::size_t i = 1; i < duplicates.size(); ++i) {
      message += fmt::format("{} {} {}", i == 1 ? "; also duplicated:" : ",", duplicates[i].path,
                             describe(duplicates[i]));
    }
    throw ConfigError(duplicates.front().path, message);
  }
  parsed.value = std::move(builder.result());
  return parsed;
}

}  // namespace deepspeed::config_detail
