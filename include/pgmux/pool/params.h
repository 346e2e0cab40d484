// Session parameters pgmux tracks per client and per server (client_encoding, DateStyle, ...):
// their canonical names, and the one SET that moves a server to a client's values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgmux::pool {

// A small ordered name -> value list; names in PostgreSQL's reported spelling. Copies share one
// list until one of them changes (most clients of a pool hold the same values: shared, they cost
// a pointer each instead of some 600 bytes). The count of sharers is not atomic: copies stay on
// one thread, and clone() makes one for another.
class ParamList {
 public:
  using Items = std::vector<std::pair<std::string, std::string>>;
  ParamList() = default;
  ParamList(const ParamList& other) : body_(other.body_) {
    if (body_ != nullptr) ++body_->refs;
  }
  ParamList(ParamList&& other) noexcept : body_(std::exchange(other.body_, nullptr)) {}
  ParamList& operator=(const ParamList& other) {
    if (other.body_ != nullptr) ++other.body_->refs;
    release();
    body_ = other.body_;
    return *this;
  }
  ParamList& operator=(ParamList&& other) noexcept {
    if (this != &other) {
      release();
      body_ = std::exchange(other.body_, nullptr);
    }
    return *this;
  }
  ~ParamList() { release(); }

  const std::string* get(std::string_view name) const;
  // Returns true when the value changed.
  bool set(std::string_view name, std::string_view value);
  const Items& items() const;
  // Whether the two hold one shared list (so the same values).
  bool sharesWith(const ParamList& other) const { return body_ == other.body_; }
  bool empty() const { return body_ == nullptr || body_->items.empty(); }
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
    uint32_t refs = 1;
    bool keyValid = false;
  };
  void release() {
    if (body_ != nullptr && --body_->refs == 0) delete body_;
    body_ = nullptr;
  }
  // Null while empty. 8 bytes rather than a shared_ptr's 16: a client holds two lists.
  Body* body_ = nullptr;
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

// A value a server reported for a client's session. `own` when it answers pgmux's own SET of the
// client's values: the server's spelling of a value the client asked for ('utf8' -> 'UTF8'),
// which `defaults` takes too where it held the same value. Otherwise a statement of the client
// changed it, and only `current` moves.
void applyReportedValue(ParamList& current, ParamList& defaults, std::string_view name, std::string_view value,
                        bool own);
// RESET ALL on a client's view: each tracked value of `current` that differs from `defaults` takes
// the default, with a ParameterStatus appended to `out` for it, as PostgreSQL reports the change.
// False, with nothing changed, when `current` holds a tracked value that `defaults` lacks: its
// default is the server's, not known here.
bool resetToDefaults(const TrackedParams& tracked, ParamList& current, const ParamList& defaults, std::string& out);

// "SET a TO 'x'; SET b TO 'y'" for each tracked name whose value in `want` differs from `have`;
// empty when nothing differs.
std::string buildSetQuery(const TrackedParams& tracked, const ParamList& want, const ParamList& have);
// A SQL string literal for `value` (E'' form when it holds a backslash).
std::string quoteLiteral(std::string_view value);

}  // namespace pgmux::pool
