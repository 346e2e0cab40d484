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

// The statements a reset query is made of, as tokens: words (compared ignoring case) and the
// punctuation ( ) *.
enum class Form : uint8_t { UnlockAll, CloseAll, UnlistenAll, ResetAll };
struct FormSpec {
  Form form;
  size_t count;
  std::array<std::string_view, 4> tokens;
};
constexpr FormSpec kForms[] = {
    {Form::UnlockAll, 4, {"select", "pg_advisory_unlock_all", "(", ")"}},
    {Form::CloseAll, 2, {"close", "all"}},
    {Form::UnlistenAll, 2, {"unlisten", "*"}},
    {Form::ResetAll, 2, {"reset", "all"}},
};
constexpr unsigned kAllForms = (1u << std::size(kForms)) - 1;

// One statement read token by token: the forms it can still be. Any other query fails at its
// first token that no form has (an ordinary SELECT at its second).
struct Statement {
  unsigned candidates = kAllForms;
  size_t count = 0;

  bool add(std::string_view token) {
    for (size_t f = 0; f < std::size(kForms); ++f) {
      const FormSpec& spec = kForms[f];
      if ((candidates & (1u << f)) == 0) continue;
      const bool fits = count < spec.count && token.size() == spec.tokens[count].size() &&
                        strncasecmp(token.data(), spec.tokens[count].data(), token.size()) == 0;
      if (!fits) candidates &= ~(1u << f);
    }
    ++count;
    return candidates != 0;
  }
  // The form the statement is, once whole; null when it stopped short of every form.
  const FormSpec* complete() const {
    for (size_t f = 0; f < std::size(kForms); ++f) {
      if ((candidates & (1u << f)) != 0 && kForms[f].count == count) return &kForms[f];
    }
    return nullptr;
  }
};

// Appends PostgreSQL's reply to one statement.
void answerStatement(Form form, std::string& out) {
  switch (form) {
    case Form::UnlockAll:
      proto::encodeRowDescription(out, "pg_advisory_unlock_all", kVoidOid, kVoidLen);
      proto::encodeDataRow(out, {std::string()});  // void's text form is empty, not NULL
      proto::encodeCommandComplete(out, "SELECT 1");
      return;
    case Form::CloseAll:
      proto::encodeCommandComplete(out, "CLOSE CURSOR ALL");
      return;
    case Form::UnlistenAll:
      proto::encodeCommandComplete(out, "UNLISTEN");
      return;
    case Form::ResetAll:
      proto::encodeCommandComplete(out, "RESET");
      return;
  }
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
        const FormSpec* spec = st.complete();
        if (spec == nullptr) return fail();
        answerStatement(spec->form, out);
        reset = reset || spec->form == Form::ResetAll;
        ++statements;
        st = Statement{};
      }
      ++i;
      continue;
    }
    if (isSpace(c)) {
      ++i;
      continue;
    }
    size_t end = i + 1;
    if (isWordChar(c)) {
      while (end < sql.size() && isWordChar(sql[end])) ++end;
    } else if (c != '(' && c != ')' && c != '*') {
      return fail();  // quotes, comments, operators: not a reset statement
    }
    if (!st.add(sql.substr(i, end - i))) return fail();
    i = end;
  }
  if (statements == 0) return fail();
  resetAll = reset;
  return true;
}

}  // namespace pgmux::pool
