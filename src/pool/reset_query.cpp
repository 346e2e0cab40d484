// A driver's connection-reset query answered without a server.
#include "pgmux/pool/reset_query.h"

#include <strings.h>

#include <array>

#include "pgmux/proto/messages.h"

namespace pgmux::pool {

namespace {

constexpr int32_t kVoidOid = 2278;  // pg_advisory_unlock_all() returns void
constexpr int16_t kVoidLen = 4;

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool isWordChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// One statement's tokens: words (identifiers, keywords) and the punctuation ( ) *.
struct Statement {
  static constexpr size_t kMaxTokens = 4;
  std::array<std::string_view, kMaxTokens> tokens{};
  size_t count = 0;

  bool is(std::initializer_list<std::string_view> want) const {
    if (want.size() != count) return false;
    size_t i = 0;
    for (std::string_view w : want) {
      const std::string_view t = tokens[i++];
      if (t.size() != w.size() || strncasecmp(t.data(), w.data(), w.size()) != 0) return false;
    }
    return true;
  }
};

// Appends the reply to one statement; false when it is not one of the reset statements.
bool answerStatement(const Statement& st, std::string& out, bool& resetAll) {
  if (st.is({"select", "pg_advisory_unlock_all", "(", ")"})) {
    proto::encodeRowDescription(out, "pg_advisory_unlock_all", kVoidOid, kVoidLen);
    proto::encodeDataRow(out, {std::string()});  // void's text form is empty, not NULL
    proto::encodeCommandComplete(out, "SELECT 1");
    return true;
  }
  if (st.is({"close", "all"})) {
    proto::encodeCommandComplete(out, "CLOSE CURSOR ALL");
    return true;
  }
  if (st.is({"unlisten", "*"})) {
    proto::encodeCommandComplete(out, "UNLISTEN");
    return true;
  }
  if (st.is({"reset", "all"})) {
    proto::encodeCommandComplete(out, "RESET");
    resetAll = true;
    return true;
  }
  return false;
}

}  // namespace

bool answerResetQuery(std::string_view sql, std::string& out, bool& resetAll) {
  const size_t mark = out.size();
  bool reset = false;
  auto fail = [&] {
    out.resize(mark);
    return false;
  };
  Statement st;
  size_t statements = 0;
  for (size_t i = 0; i <= sql.size();) {
    const char c = i < sql.size() ? sql[i] : ';';
    if (c == ';') {
      // Empty statements (";;", a trailing ";") are skipped, as PostgreSQL's parser skips them.
      if (st.count > 0) {
        if (!answerStatement(st, out, reset)) return fail();
        ++statements;
        st.count = 0;
      }
      ++i;
      continue;
    }
    if (isSpace(c)) {
      ++i;
      continue;
    }
    if (st.count == Statement::kMaxTokens) return fail();
    size_t end = i + 1;
    if (isWordChar(c)) {
      while (end < sql.size() && isWordChar(sql[end])) ++end;
    } else if (c != '(' && c != ')' && c != '*') {
      return fail();  // quotes, comments, operators: not a reset statement
    }
    st.tokens[st.count++] = sql.substr(i, end - i);
    i = end;
  }
  if (statements == 0) return fail();
  resetAll = reset;
  return true;
}

}  // namespace pgmux::pool
