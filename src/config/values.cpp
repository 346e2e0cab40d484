// Value parsers and printers shared by the settings table and the [databases]/[users] lines.
#include "values.h"

#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <utility>

namespace pgmux::config::detail {

namespace {

bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

char lowerChar(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

constexpr std::array<std::pair<const char*, PoolMode>, 3> kPoolModes{{
    {"session", PoolMode::Session},
    {"transaction", PoolMode::Transaction},
    {"statement", PoolMode::Statement},
}};

constexpr std::array<std::pair<const char*, AuthType>, 9> kAuthTypes{{
    {"any", AuthType::Any},
    {"trust", AuthType::Trust},
    {"plain", AuthType::Plain},
    {"md5", AuthType::Md5},
    {"scram-sha-256", AuthType::ScramSha256},
    {"cert", AuthType::Cert},
    {"hba", AuthType::Hba},
    {"pam", AuthType::Pam},
    {"ldap", AuthType::Ldap},
}};

}  // namespace

std::string_view trim(std::string_view s) {
  while (!s.empty() && isSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && isSpace(s.back())) s.remove_suffix(1);
  return s;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lowerChar(a[i]) != lowerChar(b[i])) return false;
  }
  return true;
}

std::string toLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lowerChar(c);
  return out;
}

bool parseInteger(std::string_view text, int64_t min, int64_t max, int64_t& out,
                  std::string& expected) {
  int64_t value = 0;
  const char* first = text.data();
  const char* last = text.data() + text.size();
  // from_chars takes no '+'; a leading '+' is still a plain number to a person writing a file.
  if (first != last && *first == '+') ++first;
  const auto [end, ec] = std::from_chars(first, last, value);
  if (!text.empty() && ec == std::errc() && end == last && value >= min && value <= max) {
    out = value;
    return true;
  }
  expected = "an integer ";
  if (max == std::numeric_limits<int>::max() || max == std::numeric_limits<int64_t>::max()) {
    expected += ">= " + std::to_string(min);
  } else {
    expected += std::to_string(min) + "-" + std::to_string(max);
  }
  return false;
}

bool parseBool(std::string_view text, bool& out, std::string& expected) {
  static constexpr std::array<const char*, 4> kTrue{"1", "yes", "on", "true"};
  static constexpr std::array<const char*, 4> kFalse{"0", "no", "off", "false"};
  for (const char* word : kTrue) {
    if (equalsIgnoreCase(text, word)) {
      out = true;
      return true;
    }
  }
  for (const char* word : kFalse) {
    if (equalsIgnoreCase(text, word)) {
      out = false;
      return true;
    }
  }
  expected = "a boolean: 0/1, yes/no, on/off or true/false";
  return false;
}

bool parseSeconds(std::string_view text, double& out, std::string& expected) {
  double value = 0;
  const char* first = text.data();
  const char* last = text.data() + text.size();
  if (first != last && *first == '+') ++first;
  const auto [end, ec] = std::from_chars(first, last, value, std::chars_format::fixed);
  if (!text.empty() && ec == std::errc() && end == last && std::isfinite(value) && value >= 0) {
    out = value;
    return true;
  }
  expected = "a number of seconds >= 0, fractions allowed";
  return false;
}

bool parsePoolMode(std::string_view text, PoolMode& out, std::string& expected) {
  for (const auto& [name, mode] : kPoolModes) {
    if (equalsIgnoreCase(text, name)) {
      out = mode;
      return true;
    }
  }
  expected = "session, transaction or statement";
  return false;
}

bool parseAuthType(std::string_view text, AuthType& out, std::string& expected) {
  for (const auto& [name, type] : kAuthTypes) {
    if (equalsIgnoreCase(text, name)) {
      out = type;
      return true;
    }
  }
  expected = "one of any, trust, plain, md5, scram-sha-256, cert, hba, pam, ldap";
  return false;
}

std::vector<std::string> parseList(std::string_view text) {
  std::vector<std::string> items;
  while (true) {
    const size_t comma = text.find(',');
    const std::string_view item = trim(text.substr(0, comma));
    if (!item.empty()) items.emplace_back(item);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return items;
}

std::string invalidValue(std::string_view key, std::string_view value, std::string_view expected) {
  std::string out = "invalid value for ";
  out += key;
  out += ": '";
  out += value;
  out += "' (expected ";
  out += expected;
  out += ")";
  return out;
}

std::string formatSeconds(double seconds) {
  std::array<char, 64> buf{};
  const auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), seconds);
  if (ec != std::errc()) return std::to_string(seconds);
  return std::string(buf.data(), end);
}

std::string formatList(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += ",";
    out += item;
  }
  return out;
}

}  // namespace pgmux::config::detail

namespace pgmux::config {

const char* toString(PoolMode mode) {
  switch (mode) {
    case PoolMode::Session:
      return "session";
    case PoolMode::Transaction:
      return "transaction";
    case PoolMode::Statement:
      return "statement";
  }
  return "?";
}

const char* toString(AuthType type) {
  switch (type) {
    case AuthType::Any:
      return "any";
    case AuthType::Trust:
      return "trust";
    case AuthType::Plain:
      return "plain";
    case AuthType::Md5:
      return "md5";
    case AuthType::ScramSha256:
      return "scram-sha-256";
    case AuthType::Cert:
      return "cert";
    case AuthType::Hba:
      return "hba";
    case AuthType::Pam:
      return "pam";
    case AuthType::Ldap:
      return "ldap";
  }
  return "?";
}

}  // namespace pgmux::config
