// The statement registry (one server-side name per definition, freed with its last reference,
// retired on a changed result type), the per-server LRU and confirmed set, the per-client name
// map, and the recognition of DEALLOCATE ALL / DISCARD ALL and DEALLOCATE name.
#include "pgmux/pool/statements.h"

#include <catch2/catch.hpp>
#include <string>
#include <unordered_map>
#include <vector>

using namespace pgmux::pool;
using namespace std::string_literals;

namespace {

// A Parse body after the name: query, NUL, parameter count, OIDs.
std::string def(const std::string& query, uint16_t nparams = 0) {
  std::string d = query + '\0';
  d.push_back(static_cast<char>(nparams >> 8));
  d.push_back(static_cast<char>(nparams & 0xff));
  for (uint16_t i = 0; i < nparams; ++i) d += "\0\0\0\x17"s;  // int4
  return d;
}

std::vector<uint64_t> idsOf(const std::vector<StatementRef>& v) {
  std::vector<uint64_t> out;
  for (const auto& s : v) out.push_back(s->id());
  return out;
}

}  // namespace

TEST_CASE("intern: one statement per definition, PGMUX_<n> names", "[pool][statements]") {
  StatementRegistry reg;
  StatementRef a = reg.intern(def("select 1"));
  StatementRef a2 = reg.intern(def("select 1"));
  StatementRef b = reg.intern(def("select 2"));
  // Same text, other parameter types: another statement.
  StatementRef c = reg.intern(def("select $1", 1));
  StatementRef d = reg.intern(def("select $1", 0));
  REQUIRE(a);
  CHECK(a.get() == a2.get());
  CHECK(a->serverName() == a2->serverName());
  CHECK(a.get() != b.get());
  CHECK(c.get() != d.get());
  CHECK(reg.size() == 4);

  const std::vector<const Statement*> all = {a.get(), b.get(), c.get(), d.get()};
  for (size_t i = 0; i < all.size(); ++i) {
    CHECK(all[i]->serverName() == "PGMUX_" + std::to_string(all[i]->id()));
    CHECK_FALSE(all[i]->retired());
    for (size_t j = i + 1; j < all.size(); ++j) CHECK(all[i]->serverName() != all[j]->serverName());
  }
  CHECK(a->definition() == def("select 1"));
  CHECK(c->definition() == def("select $1", 1));
}

TEST_CASE("intern looks a definition up by its bytes, NULs included", "[pool][statements]") {
  StatementRegistry reg;
  // Definitions that differ only after the query's NUL.
  StatementRef a = reg.intern("q\0\0\x01\0\0\0\x17"s);
  StatementRef b = reg.intern("q\0\0\x01\0\0\0\x19"s);
  CHECK(a.get() != b.get());
  const std::string key = "q\0\0\x01\0\0\0\x17"s;
  CHECK(reg.intern(std::string_view(key)).get() == a.get());
}

TEST_CASE("a statement is freed when its last reference goes", "[pool][statements]") {
  StatementRegistry reg;
  StatementRef a = reg.intern(def("select 1"));
  const uint64_t firstId = a->id();
  {
    StatementRef copy = a;  // NOLINT: the copy is the point
    StatementRef moved = std::move(copy);
    CHECK_FALSE(copy);  // NOLINT: checking the moved-from state
    CHECK(moved.get() == a.get());
    StatementRef assigned;
    assigned = moved;
    CHECK(reg.size() == 1);
  }
  CHECK(reg.size() == 1);  // `a` still holds it
  StatementRef again = reg.intern(def("select 1"));
  CHECK(again.get() == a.get());
  again.reset();
  CHECK_FALSE(again);
  CHECK(reg.size() == 1);
  a.reset();
  CHECK(reg.size() == 0);

  // Interned again after it was freed: a new statement, a new name.
  StatementRef fresh = reg.intern(def("select 1"));
  CHECK(fresh->id() != firstId);
  CHECK(fresh->serverName() != "PGMUX_" + std::to_string(firstId));
  CHECK(reg.size() == 1);

  // A reference dropped straight away frees it too.
  (void)reg.intern(def("select 3"));
  CHECK(reg.size() == 1);
}

TEST_CASE("retire: out of the lookup, still usable by those who hold it", "[pool][statements]") {
  StatementRegistry reg;
  StatementRef old = reg.intern(def("select * from t"));
  StatementRef oldToo = old;
  const std::string oldName = old->serverName();
  reg.retire(old.get());
  CHECK(old->retired());
  CHECK(reg.size() == 0);
  reg.retire(old.get());  // twice is harmless
  CHECK(reg.size() == 0);

  StatementRef fresh = reg.intern(def("select * from t"));
  CHECK(fresh.get() != old.get());
  CHECK(fresh->serverName() != oldName);
  CHECK_FALSE(fresh->retired());
  CHECK(reg.size() == 1);

  // The retired one still answers for its holders.
  CHECK(old->serverName() == oldName);
  CHECK(old->definition() == def("select * from t"));
  old.reset();
  CHECK(oldToo->retired());
  oldToo.reset();
  // Freeing the retired statement leaves the new one in the table.
  CHECK(reg.size() == 1);
  CHECK(reg.intern(def("select * from t")).get() == fresh.get());
  fresh.reset();
  CHECK(reg.size() == 0);
}

TEST_CASE("ServerStatements: touch moves to the front, add evicts the least recently used", "[pool][statements]") {
  StatementRegistry reg;
  StatementRef a = reg.intern(def("a"));
  StatementRef b = reg.intern(def("b"));
  StatementRef c = reg.intern(def("c"));
  StatementRef d = reg.intern(def("d"));
  StatementRef e = reg.intern(def("e"));
  ServerStatements srv;
  std::vector<StatementRef> evicted;
  srv.add(a, 3, evicted);
  srv.add(b, 3, evicted);
  srv.add(c, 3, evicted);
  CHECK(evicted.empty());
  CHECK(srv.size() == 3);
  CHECK(srv.has(a.get()));
  CHECK_FALSE(srv.has(d.get()));

  CHECK(srv.touch(a.get()));  // order now a, c, b
  CHECK_FALSE(srv.touch(d.get()));
  CHECK(srv.size() == 3);

  srv.add(d, 3, evicted);  // b goes
  CHECK(idsOf(evicted) == std::vector<uint64_t>{b->id()});
  CHECK_FALSE(srv.has(b.get()));
  CHECK(srv.has(a.get()));
  CHECK(srv.has(c.get()));
  CHECK(srv.has(d.get()));
  CHECK(srv.size() == 3);

  evicted.clear();
  srv.add(e, 3, evicted);  // order was d, a, c: c goes
  CHECK(idsOf(evicted) == std::vector<uint64_t>{c->id()});

  // A smaller limit evicts several, least recently used first: e, d, a -> a, d go.
  evicted.clear();
  srv.add(b, 2, evicted);
  CHECK(idsOf(evicted) == std::vector<uint64_t>{a->id(), d->id()});
  CHECK(srv.size() == 2);
  CHECK(srv.has(e.get()));
  CHECK(srv.has(b.get()));

  // Touching the front is a no-op; the back is then the other one.
  CHECK(srv.touch(b.get()));
  evicted.clear();
  srv.add(a, 2, evicted);
  CHECK(idsOf(evicted) == std::vector<uint64_t>{e->id()});
}

TEST_CASE("ServerStatements holds references: remove, clear and eviction release them", "[pool][statements]") {
  StatementRegistry reg;
  ServerStatements srv;
  std::vector<StatementRef> evicted;
  srv.add(reg.intern(def("x")), 10, evicted);
  srv.add(reg.intern(def("y")), 10, evicted);
  srv.add(reg.intern(def("z")), 10, evicted);
  CHECK(reg.size() == 3);  // only the server holds them

  StatementRef x = reg.intern(def("x"));
  CHECK(srv.has(x.get()));
  srv.remove(x.get());
  CHECK_FALSE(srv.has(x.get()));
  CHECK(srv.size() == 2);
  srv.remove(x.get());  // absent: nothing happens
  CHECK(srv.size() == 2);
  x.reset();
  CHECK(reg.size() == 2);

  srv.add(reg.intern(def("w")), 2, evicted);  // y, the least recently used, goes to `evicted`
  REQUIRE(evicted.size() == 1);
  CHECK(reg.size() == 3);  // held by `evicted` until it is closed
  CHECK(evicted[0]->definition() == def("y"));
  evicted.clear();
  CHECK(reg.size() == 2);

  srv.clear();
  CHECK(srv.size() == 0);
  CHECK(reg.size() == 0);

  // Usable again after clear.
  StatementRef z = reg.intern(def("z"));
  srv.add(z, 2, evicted);
  CHECK(srv.has(z.get()));
  CHECK(srv.touch(z.get()));
}

TEST_CASE("ServerStatements: the confirmed set, and resync of the LRU to a target", "[pool][statements]") {
  StatementRegistry reg;
  StatementRef a = reg.intern(def("a"));
  StatementRef b = reg.intern(def("b"));
  StatementRef c = reg.intern(def("c"));
  StatementRef d = reg.intern(def("d"));
  StatementRef e = reg.intern(def("e"));
  ServerStatements srv;
  std::vector<StatementRef> evicted;
  srv.add(a, 10, evicted);
  srv.add(b, 10, evicted);
  srv.add(c, 10, evicted);
  CHECK(srv.touch(a.get()));  // order: a, c, b
  CHECK(srv.known().empty());  // adding is not confirming

  srv.confirm(a);
  srv.confirm(a);  // twice is once
  srv.confirm(d);
  CHECK(srv.known().size() == 2);
  srv.confirmGone(d.get());
  srv.confirmGone(e.get());  // never known: nothing happens
  CHECK(srv.known().size() == 1);
  CHECK(srv.known().count(a->id()) == 1);
  CHECK_FALSE(srv.has(d.get()));  // the confirmed set and the LRU are separate views

  // Resync to {a, b, d}: c goes, a and b keep their order, d comes in as least recently used.
  std::unordered_map<uint64_t, StatementRef> target = {{a->id(), a}, {b->id(), b}, {d->id(), d}};
  srv.resync(target);
  CHECK(srv.size() == 3);
  CHECK(srv.has(a.get()));
  CHECK(srv.has(b.get()));
  CHECK(srv.has(d.get()));
  CHECK_FALSE(srv.has(c.get()));
  evicted.clear();
  srv.add(e, 3, evicted);
  CHECK(idsOf(evicted) == std::vector<uint64_t>{d->id()});
  evicted.clear();
  srv.add(c, 3, evicted);
  CHECK(idsOf(evicted) == std::vector<uint64_t>{b->id()});

  // Resync to nothing empties the LRU, the confirmed set stays.
  srv.resync({});
  CHECK(srv.size() == 0);
  CHECK(srv.known().size() == 1);
  srv.forgetKnown();
  CHECK(srv.known().empty());

  // clear() empties both, and the references go with them.
  srv.add(a, 10, evicted);
  srv.confirm(b);
  evicted.clear();
  srv.clear();
  CHECK(srv.size() == 0);
  CHECK(srv.known().empty());
  target.clear();
  a.reset();
  b.reset();
  c.reset();
  d.reset();
  e.reset();
  CHECK(reg.size() == 0);
}

TEST_CASE("ClientStatements: set, find, take", "[pool][statements]") {
  StatementRegistry reg;
  ClientStatements cli;
  StatementRef a = reg.intern(def("select 1"));
  StatementRef b = reg.intern(def("select 2"));
  CHECK(cli.find("s1") == nullptr);
  cli.set("s1", a);
  cli.set("s2", b);
  CHECK(cli.size() == 2);
  const std::string longer = "s1 and more";
  const StatementRef* f = cli.find(std::string_view(longer).substr(0, 2));  // not NUL-terminated
  REQUIRE(f != nullptr);
  CHECK(f->get() == a.get());
  CHECK(cli.find("s") == nullptr);
  CHECK(cli.find("") == nullptr);

  // Two names for one statement.
  cli.set("alias", a);
  CHECK(cli.find("alias")->get() == a.get());

  StatementRef taken = cli.take("s2");
  CHECK(taken.get() == b.get());
  CHECK(cli.find("s2") == nullptr);
  CHECK_FALSE(cli.take("s2"));
  CHECK(cli.size() == 2);

  // Overwriting a name releases what it named.
  taken.reset();
  b.reset();
  CHECK(reg.size() == 1);
  cli.set("s1", reg.intern(def("select 3")));
  a.reset();
  CHECK(reg.size() == 2);  // "alias" still holds select 1
  cli.take("alias");
  CHECK(reg.size() == 1);

  cli.clear();
  CHECK(cli.size() == 0);
  CHECK(reg.size() == 0);
}

TEST_CASE("dropsAllStatements: the CommandComplete tags of DISCARD ALL and DEALLOCATE ALL", "[pool][statements]") {
  const auto tag = [](const std::string& t) {
    return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(t.data()), t.size());
  };
  CHECK(dropsAllStatements(tag("DISCARD ALL\0"s)));
  CHECK(dropsAllStatements(tag("DEALLOCATE ALL\0"s)));
  for (const std::string& t : {"DEALLOCATE\0"s, "DISCARD PLANS\0"s, "DISCARD TEMP\0"s, "SELECT 1\0"s,
                              "DISCARD ALL"s, "DISCARD ALL \0"s, "discard all\0"s, ""s, "\0"s}) {
    INFO(t);
    CHECK_FALSE(dropsAllStatements(tag(t)));
  }
}

TEST_CASE("deallocatedName: the name of DEALLOCATE [PREPARE] name, as PostgreSQL reads it", "[pool][statements]") {
  CHECK(deallocatedName("DEALLOCATE foo") == "foo");
  CHECK(deallocatedName("deallocate prepare _pg3_12") == "_pg3_12");
  CHECK(deallocatedName("DEALLOCATE Foo_Bar") == "foo_bar");  // unquoted: folded to lower case
  CHECK(deallocatedName("DEALLOCATE \"Foo\"") == "Foo");      // quoted: exactly
  CHECK(deallocatedName("DEALLOCATE \"a\"\"b c\"") == "a\"b c");
  CHECK(deallocatedName("DEALLOCATE \"all\"") == "all");  // a statement named all
  CHECK(deallocatedName("  DEALLOCATE   s1 ;  ") == "s1");
  CHECK(deallocatedName("/* psycopg */ DEALLOCATE PREPARE s1; -- done") == "s1");
  CHECK(deallocatedName("DEALLOCATE s$1") == "s$1");
  CHECK(deallocatedName("DEALLOCATE \xc3\xa9t\xc3\xa9") == "\xc3\xa9t\xc3\xa9");

  for (const char* sql : {"DEALLOCATE ALL", "deallocate prepare all", "DEALLOCATE", "DEALLOCATE ;", "DEALLOCATE \"\"",
                          "DEALLOCATE \"open", "DEALLOCATE foo bar", "DEALLOCATE foo; SELECT 1", "DEALLOCATE foo-1",
                          "DISCARD ALL", "EXECUTE foo", "SELECT 'DEALLOCATE foo'", "deallocatefoo", ""}) {
    INFO(sql);
    CHECK(deallocatedName(sql).empty());
  }
}
