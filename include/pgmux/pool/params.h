// Session parameters pgmux tracks per client and per server (client_encoding, DateStyle, ...):
// their canonical names, and the one SET that moves a server to a client's values.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgmux::pool {

// A small ordered name -> value list; names in PostgreSQL's reported spelling. Copies share one
// list until one of them changes (most clients of a pool hold the same values: shared, they cost
// a pointer each instead of some 600 bytes).
class ParamList {
 public:
  using Items = std::vector<std::pair<std::string, std::string>>;
  const std::string* get(std::string_view name) const;
  // Returns true when the value changed.
  bool set(std::string_view name, std::string_view value);
  const Items& items() const;
  bool empty() const { return shared_ == nullptr || shared_->items.empty(); }
  // The values of the tracked names, in their order, as one string; kept until the list
  // changes. Two lists with the same key need no SET between them.
  const std::string& trackedKey(const class TrackedParams& tracked) const;
  // A copy sharing nothing with this list, for another thread: copies share their list (and
  // its cached key) without locking, so only one thread may use them.
  ParamList clone() const;

 private:
  struct Body {
    Items items;
    std::string key;
    bool keyValid = false;
  };
  std::shared_ptr<Body> shared_;  // null while empty
};

// The tracked names: the built-in ones and `extra` (track_extra_parameters). Lookup is
// case-insensitive; returns the canonical spelling, or an empty view when not tracked.
class TrackedParams {
 public:
  explicit TrackedParams(const std::vector<std::string>& extra);
  std::string_view canonical(std::string_view name) const;
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::vector<std::string> names_;
};

// "SET a TO 'x'; SET b TO 'y'" for each tracked name whose value in `want` differs from `have`;
// empty when nothing differs.
std::string buildSetQuery(const TrackedParams& tracked, const ParamList& want, const ParamList& have);
// A SQL string literal for `value` (E'' form when it holds a backslash).
std::string quoteLiteral(std::string_view value);

}  // namespace pgmux::pool
