// Prepared statements across server switches. A client's Parse names a statement the client
// knows by its own name; pgmux keys it by its definition (query text and parameter types) and
// prepares it on servers under one pooler-wide name, PGMUX_<n>. Each client maps its names to
// statements; each server keeps an LRU of the statements prepared on it.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace pgmux::pool {

class StatementRegistry;

// One statement definition under its pooler-wide server-side name. Reference-counted by the
// clients that map a name to it and the servers that have it prepared.
class Statement {
 public:
  uint64_t id() const { return id_; }
  const std::string& serverName() const { return serverName_; }
  // The Parse body after the name: query text, NUL, parameter count and types.
  const std::string& definition() const { return definition_; }
  // Its result type changed under a cached plan (PostgreSQL's 0A000): clients that prepared it
  // must prepare it again, which gives them a new statement.
  bool retired() const { return retired_; }

 private:
  friend class StatementRegistry;
  friend class StatementRef;
  Statement(StatementRegistry& owner, uint64_t id, std::string definition)
      : owner_(owner), id_(id), serverName_("PGMUX_" + std::to_string(id)), definition_(std::move(definition)) {}
  StatementRegistry& owner_;
  uint64_t id_;
  std::string serverName_;
  std::string definition_;
  uint32_t refs_ = 0;
  bool retired_ = false;
};

// A counted reference to a Statement (empty when default-constructed).
class StatementRef {
 public:
  StatementRef() = default;
  explicit StatementRef(Statement* s) : s_(s) {
    if (s_ != nullptr) ++s_->refs_;
  }
  StatementRef(const StatementRef& o) : StatementRef(o.s_) {}
  StatementRef(StatementRef&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  StatementRef& operator=(StatementRef o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~StatementRef() { reset(); }
  void reset();
  Statement* get() const { return s_; }
  Statement* operator->() const { return s_; }
  explicit operator bool() const { return s_ != nullptr; }

 private:
  Statement* s_ = nullptr;
};

// Counters for SHOW STATS (the admin console comes later): Parse messages from clients, Parse
// messages sent to servers (the client's own and injected ones), Bind messages of named statements.
struct StatementCounters {
  uint64_t clientParses = 0;
  uint64_t serverParses = 0;
  uint64_t binds = 0;
};

// The pooler-wide table: definition -> statement. A statement leaves it when the last reference
// goes, or when it is retired.
class StatementRegistry {
 public:
  StatementRegistry() = default;
  StatementRegistry(const StatementRegistry&) = delete;
  StatementRegistry& operator=(const StatementRegistry&) = delete;
  ~StatementRegistry();

  // The statement for `definition`, created with a new server-side name when there is none.
  StatementRef intern(std::string_view definition);
  // Takes `s` out of the table: its name stays with those who hold it, a new Parse of the same
  // definition gets a new statement.
  void retire(Statement* s);
  size_t size() const { return byDefinition_.size(); }
  StatementCounters& counters() { return counters_; }

 private:
  friend class StatementRef;
  void release(Statement* s);

  std::unordered_map<std::string_view, Statement*> byDefinition_;  // keys view the statements' definitions
  uint64_t nextId_ = 1;
  StatementCounters counters_;
};

// What one server has prepared. Two views: the LRU is what the server will have once every
// message sent to it has been answered as hoped (pgmux rewrites the next messages by it); the
// known set is what its replies have confirmed. They differ only while an error's effects are
// being sorted out, and resync() makes the LRU agree again.
class ServerStatements {
 public:
  bool has(const Statement* s) const { return index_.count(s->id()) != 0; }
  // Marks `s` used; false when the server does not have it.
  bool touch(const Statement* s);
  // Records `s` as being prepared; returns, in `evicted`, what must be closed to stay within
  // `limit`.
  void add(StatementRef s, size_t limit, std::vector<StatementRef>& evicted);
  void remove(const Statement* s);
  // The server ran DISCARD ALL or DEALLOCATE ALL: it has nothing.
  void clear();
  size_t size() const { return index_.size(); }

  // The server's replies: ParseComplete for a Parse under its name (or 42P05, it exists), and
  // CloseComplete for its Close (or 26000 naming it, it does not).
  void confirm(const StatementRef& s) { known_.emplace(s->id(), s); }
  void confirmGone(const Statement* s) { known_.erase(s->id()); }
  void forgetKnown() { known_.clear(); }
  const std::unordered_map<uint64_t, StatementRef>& known() const { return known_; }
  // Makes the LRU hold exactly `target` (keeping the order of what it already holds; the rest
  // goes in as least recently used).
  void resync(const std::unordered_map<uint64_t, StatementRef>& target);

 private:
  std::list<StatementRef> lru_;  // most recently used at the front
  std::unordered_map<uint64_t, std::list<StatementRef>::iterator> index_;
  std::unordered_map<uint64_t, StatementRef> known_;
};

// A client's names for its statements.
class ClientStatements {
 public:
  const StatementRef* find(std::string_view name) const;
  void set(std::string_view name, StatementRef s) { names_[std::string(name)] = std::move(s); }
  // Removes `name`; returns what it named (empty if nothing).
  StatementRef take(std::string_view name);
  void clear() { names_.clear(); }
  size_t size() const { return names_.size(); }

 private:
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, StatementRef, NameHash, std::equal_to<>> names_;
};

// Whether a CommandComplete's tag (its body, NUL included) is DISCARD ALL or DEALLOCATE ALL: the
// session then has no prepared statement left, whoever sent the command.
bool dropsAllStatements(std::span<const uint8_t> commandTag);
// The name `sql` deallocates when it is exactly DEALLOCATE [PREPARE] name (an unquoted name
// folded to lower case, as PostgreSQL does); empty otherwise (ALL included).
std::string deallocatedName(std::string_view sql);

}  // namespace pgmux::pool
