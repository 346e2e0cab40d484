// A driver's connection-reset query answered without a server.
#include "pgmux/pool/reset_query.h"

#include <array>
#include <cstdint>

#include "pgmux/proto/messages.h"

namespace pgmux::pool {

namespace {

constexpr int32_t kVoidOid = 2278;  // pg_advisory_unlock_all() returns void
constexpr int16_t kVoidLen = 4;

// What a byte is to the tokenizer; a table, since every Idle client's simple Query is read here.
enum class ByteClass : uint8_t { Other, Space, Word, Punct, Semicolon };
constexpr std::array<ByteClass, 256> kByteClass = [] {
  std::array<ByteClass, 256> t{};
  for (unsigned char c : {' ', '\t', '\n', '\r', '\f', '\v'}) t[c] = ByteClass::Space;
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<size_t>(c)] = ByteClass::Word;
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<size_t>(c)] = ByteClass::Word;
  for (int c = '0'; c <= '9'; ++c) t[static_cast<size_t>(c)] = ByteClass::Word;
  t['_'] = ByteClass::Word;
  for (unsigned char c : {'(', ')', '*'}) t[c] = ByteClass::Punct;
  t[';'] = ByteClass::Semicolon;
  return t;
}();
ByteClass classOf(char c) { return kByteClass[static_cast<unsigned char>(c)]; }

// `token` equals `lower` (lower case) ignoring ASCII case.
bool equalsFolded(std::string_view token, std::string_view lower) {
  if (token.size() != lower.size()) return false;
  for (size_t i = 0; i < token.size(); ++i) {
    const char c = token[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c) != lower[i]) return false;
  }
  return true;
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
constexpr size_t kMaxTokens = 4;

// One statement's tokens, up to the most a form has.
struct Statement {
  std::array<std::string_view, kMaxTokens> tokens{};
  size_t count = 0;

  bool add(std::string_view token) {
    if (count == kMaxTokens) return false;
    tokens[count++] = token;
    return true;
  }
  // The form the statement is; null when it is none of them.
  const FormSpec* form() const {
    for (const FormSpec& spec : kForms) {
      if (spec.count != count) continue;
      size_t i = 0;
      while (i < count && equalsFolded(tokens[i], spec.tokens[i])) ++i;
      if (i == count) return &spec;
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
  // Most queries are not one, and most fail this first: before its trailing spaces and `;` a
  // reset query ends in "ALL", "*" or ")".
  size_t end = sql.size();
  while (end > 0 && (classOf(sql[end - 1]) == ByteClass::Space || sql[end - 1] == ';')) --end;
  if (end == 0) return false;
  const char last = sql[end - 1];
  if (last != '*' && last != ')' && !(end >= 3 && equalsFolded(sql.substr(end - 3, 3), "all"))) return false;

  const size_t mark = out.size();
  bool reset = false;
  auto fail = [&] {
    out.resize(mark);
    return false;
  };
  Statement st;
  size_t statements = 0;
  for (size_t i = 0; i <= sql.size();) {
    const ByteClass k = i < sql.size() ? classOf(sql[i]) : ByteClass::Semicolon;
    switch (k) {
      case ByteClass::Semicolon:
        // Empty statements (";;", a trailing ";") are skipped, as PostgreSQL's parser skips them.
        if (st.count > 0) {
          const FormSpec* spec = st.form();
          if (spec == nullptr) return fail();
          answerStatement(spec->form, out);
          reset = reset || spec->form == Form::ResetAll;
          ++statements;
          st = Statement{};
        }
        ++i;
        continue;
      case ByteClass::Space:
        ++i;
        continue;
      case ByteClass::Other:
        return fail();  // quotes, comments, operators: not a reset statement
      case ByteClass::Word:
      case ByteClass::Punct:
        break;
    }
    size_t tokenEnd = i + 1;
    if (k == ByteClass::Word) {
      while (tokenEnd < sql.size() && classOf(sql[tokenEnd]) == ByteClass::Word) ++tokenEnd;
    }
    if (!st.add(sql.substr(i, tokenEnd - i))) return fail();
    i = tokenEnd;
  }
  if (statements == 0) return fail();
  resetAll = reset;
  return true;
}

}  // namespace pgmux::pool
