// Which simple queries may share a server in a pipeline (pipeline.h).
#include "pgmux/pool/pipeline.h"

#include <algorithm>
#include <cctype>

namespace pgmux::pool {

namespace {

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

bool equalsIgnoreCase(char a, char b) {
  return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
}

bool containsIgnoreCase(std::string_view text, std::string_view word) {
  return std::search(text.begin(), text.end(), word.begin(), word.end(), equalsIgnoreCase) != text.end();
}

}  // namespace

bool pipelinableQuery(std::string_view sql) {
  size_t i = 0;
  while (i < sql.size() && isSpace(sql[i])) ++i;
  constexpr std::string_view kSelect = "select";
  if (sql.size() - i <= kSelect.size()) return false;
  for (size_t k = 0; k < kSelect.size(); ++k) {
    if (!equalsIgnoreCase(sql[i + k], kSelect[k])) return false;
  }
  // The keyword itself, not the start of a longer name.
  const char next = sql[i + kSelect.size()];
  if (!isSpace(next) && next != '(' && next != '*' && next != '-' && next != '/') return false;
  // One statement: a `;` may only end the text.
  if (const size_t semi = sql.find(';'); semi != std::string_view::npos) {
    for (size_t k = semi + 1; k < sql.size(); ++k) {
      if (!isSpace(sql[k])) return false;
    }
  }
  return !containsIgnoreCase(sql, "set_config");
}

}  // namespace pgmux::pool
