// Which simple queries may share a server in a pipeline (pipeline.h).
#include "pgmux/pool/pipeline.h"

#include <cstring>

namespace pgmux::pool {

namespace {

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// ASCII only, without the locale lookups of std::tolower: this runs on every request.
char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c; }

// Whether `text` starts, at `at`, with `word` (lower case) in any case.
bool matchesAt(std::string_view text, size_t at, std::string_view word) {
  if (text.size() - at < word.size()) return false;
  for (size_t k = 0; k < word.size(); ++k) {
    if (lower(text[at + k]) != word[k]) return false;
  }
  return true;
}

// Whether `sql` names set_config, in any case. Found by its underscore (memchr), then the
// letters around it: most queries have few underscores, and this runs on every request.
bool namesSetConfig(std::string_view sql) {
  constexpr std::string_view kWord = "set_config";
  constexpr size_t kUnderscore = 3;  // kWord's '_'
  for (size_t from = kUnderscore; from < sql.size();) {
    const void* found = std::memchr(sql.data() + from, '_', sql.size() - from);
    if (found == nullptr) return false;
    const size_t at = static_cast<size_t>(static_cast<const char*>(found) - sql.data());
    if (matchesAt(sql, at - kUnderscore, kWord)) return true;
    from = at + 1;
  }
  return false;
}

}  // namespace

bool pipelinableQuery(std::string_view sql) {
  size_t i = 0;
  while (i < sql.size() && isSpace(sql[i])) ++i;
  constexpr std::string_view kSelect = "select";
  if (sql.size() - i <= kSelect.size() || !matchesAt(sql, i, kSelect)) return false;
  // The keyword itself, not the start of a longer name.
  const char next = sql[i + kSelect.size()];
  if (!isSpace(next) && next != '(' && next != '*' && next != '-' && next != '/') return false;
  // One statement: a `;` may only end the text.
  if (const size_t semi = sql.find(';'); semi != std::string_view::npos) {
    for (size_t k = semi + 1; k < sql.size(); ++k) {
      if (!isSpace(sql[k])) return false;
    }
  }
  return !namesSetConfig(sql);
}

}  // namespace pgmux::pool
