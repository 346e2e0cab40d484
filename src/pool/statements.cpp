// The statement registry, the per-server LRU and the per-client name map.
#include "pgmux/pool/statements.h"

#include <algorithm>
#include <cassert>
#include <cctype>

namespace pgmux::pool {

void StatementRef::reset() {
  Statement* s = std::exchange(s_, nullptr);
  if (s != nullptr && --s->refs_ == 0) s->owner_.release(s);
}

StatementRegistry::~StatementRegistry() {
  // Every holder (client or server) is gone before the pooler; whatever is left is unreferenced.
  for (auto& [key, s] : byDefinition_) delete s;
}

StatementRef StatementRegistry::intern(std::string_view definition) {
  if (auto it = byDefinition_.find(definition); it != byDefinition_.end()) return StatementRef(it->second);
  auto* s = new Statement(*this, nextId_++, std::string(definition));
  byDefinition_.emplace(std::string_view(s->definition_), s);
  return StatementRef(s);
}

void StatementRegistry::retire(Statement* s) {
  if (s->retired_) return;
  s->retired_ = true;
  byDefinition_.erase(std::string_view(s->definition_));
}

void StatementRegistry::release(Statement* s) {
  if (!s->retired_) byDefinition_.erase(std::string_view(s->definition_));
  delete s;
}

bool ServerStatements::touch(const Statement* s) {
  auto it = index_.find(s->id());
  if (it == index_.end()) return false;
  if (it->second != lru_.begin()) lru_.splice(lru_.begin(), lru_, it->second);
  return true;
}

void ServerStatements::add(StatementRef s, size_t limit, std::vector<StatementRef>& evicted) {
  assert(!has(s.get()));
  while (!lru_.empty() && index_.size() >= limit) {
    index_.erase(lru_.back()->id());
    evicted.push_back(std::move(lru_.back()));
    lru_.pop_back();
  }
  const uint64_t id = s->id();
  lru_.push_front(std::move(s));
  index_.emplace(id, lru_.begin());
}

void ServerStatements::remove(const Statement* s) {
  auto it = index_.find(s->id());
  if (it == index_.end()) return;
  lru_.erase(it->second);
  index_.erase(it);
}

void ServerStatements::clear() {
  index_.clear();
  lru_.clear();
  known_.clear();
}

void ServerStatements::resync(const std::unordered_map<uint64_t, StatementRef>& target) {
  for (auto it = lru_.begin(); it != lru_.end();) {
    if (target.count((*it)->id()) == 0) {
      index_.erase((*it)->id());
      it = lru_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [id, s] : target) {
    if (index_.count(id) != 0) continue;
    lru_.push_back(s);
    index_.emplace(id, std::prev(lru_.end()));
  }
}

const StatementRef* ClientStatements::find(std::string_view name) const {
  auto it = names_.find(name);
  return it == names_.end() ? nullptr : &it->second;
}

StatementRef ClientStatements::take(std::string_view name) {
  auto it = names_.find(name);
  if (it == names_.end()) return {};
  StatementRef s = std::move(it->second);
  names_.erase(it);
  return s;
}

namespace {
// Skips blanks and SQL comments ("--" to the end of the line, "/* */").
size_t skipSpace(std::string_view s, size_t i) {
  for (;;) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    if (s.substr(i, 2) == "--") {
      i = s.find('\n', i);
      if (i == std::string_view::npos) return s.size();
    } else if (s.substr(i, 2) == "/*") {
      i = s.find("*/", i + 2);
      if (i == std::string_view::npos) return s.size();
      i += 2;
    } else {
      return i;
    }
  }
}

bool keyword(std::string_view s, size_t& i, std::string_view word) {
  i = skipSpace(s, i);
  if (s.size() - i < word.size()) return false;
  for (size_t k = 0; k < word.size(); ++k) {
    if (std::tolower(static_cast<unsigned char>(s[i + k])) != word[k]) return false;
  }
  const size_t end = i + word.size();
  if (end < s.size() && (std::isalnum(static_cast<unsigned char>(s[end])) || s[end] == '_')) return false;
  i = end;
  return true;
}
}  // namespace

bool dropsAllStatements(std::span<const uint8_t> commandTag) {
  const auto is = [&](std::string_view t) {
    return commandTag.size() == t.size() + 1 && std::equal(t.begin(), t.end(), commandTag.begin()) &&
           commandTag.back() == 0;
  };
  return is("DISCARD ALL") || is("DEALLOCATE ALL");
}

std::string deallocatedName(std::string_view sql) {
  size_t i = 0;
  if (!keyword(sql, i, "deallocate")) return {};
  size_t j = i;
  if (keyword(sql, j, "prepare")) i = j;
  i = skipSpace(sql, i);
  std::string name;
  if (i < sql.size() && sql[i] == '"') {
    for (++i;; ++i) {
      if (i >= sql.size()) return {};
      if (sql[i] == '"') {
        if (i + 1 < sql.size() && sql[i + 1] == '"') {
          name.push_back('"');
          ++i;
          continue;
        }
        ++i;
        break;
      }
      name.push_back(sql[i]);
    }
    if (name.empty()) return {};
  } else {
    while (i < sql.size() && (std::isalnum(static_cast<unsigned char>(sql[i])) || sql[i] == '_' || sql[i] == '$' ||
                              static_cast<unsigned char>(sql[i]) >= 0x80)) {
      name.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(sql[i]))));
      ++i;
    }
    if (name.empty() || name == "all") return {};
  }
  i = skipSpace(sql, i);
  while (i < sql.size() && sql[i] == ';') i = skipSpace(sql, i + 1);
  return i == sql.size() ? name : std::string();
}

}  // namespace pgmux::pool
