// Tracked session parameters and the SET that re-applies them on a server switch.
#include "pgmux/pool/params.h"

#include <strings.h>

#include "pgmux/proto/messages.h"

namespace pgmux::pool {

namespace {
bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}
}  // namespace

const ParamList::Items& ParamList::items() const {
  static const Items kNone;
  return body_ != nullptr ? body_->items : kNone;
}

ParamList ParamList::clone() const {
  ParamList copy;
  if (body_ != nullptr) copy.body_ = new Body{body_->items, {}, 1, false};
  return copy;
}

const std::string* ParamList::get(std::string_view name) const {
  for (const auto& [k, v] : items()) {
    if (k == name) return &v;
  }
  return nullptr;
}

bool ParamList::set(std::string_view name, std::string_view value) {
  const std::string* have = get(name);
  if (have != nullptr && *have == value) return false;
  // Copy on write: the other holders keep the list as it was.
  if (body_ == nullptr) {
    body_ = new Body;
  } else if (body_->refs > 1) {
    Body* mine = new Body{body_->items, {}, 1, false};
    release();
    body_ = mine;
  }
  body_->keyValid = false;
  for (auto& [k, v] : body_->items) {
    if (k == name) {
      v.assign(value);
      return true;
    }
  }
  body_->items.emplace_back(std::string(name), std::string(value));
  return true;
}

const std::string& ParamList::trackedKey(const TrackedParams& tracked) const {
  if (body_ == nullptr) {
    // No value at all: the key of an empty list is one separator per tracked name.
    thread_local std::string emptyKey;
    emptyKey.assign(tracked.names().size(), '\0');
    return emptyKey;
  }
  // Computed once per shared list: the holders share the key too.
  if (body_->keyValid) return body_->key;
  std::string& key = body_->key;
  key.clear();
  for (const auto& name : tracked.names()) {
    // A NUL cannot occur in a value: it separates them, and marks an absent one.
    if (const std::string* v = get(name); v != nullptr) {
      key.push_back('=');
      key += *v;
    }
    key.push_back('\0');
  }
  body_->keyValid = true;
  return key;
}

TrackedParams::TrackedParams(const std::vector<std::string>& extra)
    : names_{"client_encoding", "DateStyle", "TimeZone", "IntervalStyle", "standard_conforming_strings",
             "application_name"} {
  for (const auto& e : extra) {
    if (canonical(e).empty()) names_.push_back(e);
  }
}

std::string_view TrackedParams::canonical(std::string_view name) const {
  for (const auto& n : names_) {
    if (iequals(n, name)) return n;
  }
  return {};
}

void applyReportedValue(ParamList& current, ParamList& defaults, std::string_view name, std::string_view value,
                        bool own) {
  const std::string* was = current.get(name);
  const std::string* def = defaults.get(name);
  const bool defaultFollows = own && (was == nullptr ? def == nullptr : def != nullptr && *def == *was);
  const bool shared = current.sharesWith(defaults);
  if (!current.set(name, value) || !defaultFollows) return;
  if (shared) {
    defaults = current;  // one list for both again
  } else {
    defaults.set(name, value);
  }
}

bool resetToDefaults(const TrackedParams& tracked, ParamList& current, const ParamList& defaults, std::string& out) {
  if (current.sharesWith(defaults)) return true;
  for (const auto& name : tracked.names()) {
    if (current.get(name) != nullptr && defaults.get(name) == nullptr) return false;
  }
  for (const auto& name : tracked.names()) {
    const std::string* def = defaults.get(name);
    const std::string* cur = current.get(name);
    if (def != nullptr && (cur == nullptr || *cur != *def)) proto::encodeParameterStatus(out, name, *def);
  }
  current = defaults;  // every tracked value is the default's now: share its list
  return true;
}

std::string quoteLiteral(std::string_view value) {
  const bool backslash = value.find('\\') != std::string_view::npos;
  std::string out = backslash ? "E'" : "'";
  for (char c : value) {
    if (c == '\'' || (backslash && c == '\\')) out.push_back(c);
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

std::string buildSetQuery(const TrackedParams& tracked, const ParamList& want, const ParamList& have) {
  std::string sql;
  for (const auto& name : tracked.names()) {
    const std::string* w = want.get(name);
    if (w == nullptr) continue;
    const std::string* h = have.get(name);
    if (h != nullptr && *h == *w) continue;
    if (!sql.empty()) sql += "; ";
    sql += "SET ";
    sql += name;
    sql += " TO ";
    sql += quoteLiteral(*w);
  }
  return sql;
}

}  // namespace pgmux::pool
