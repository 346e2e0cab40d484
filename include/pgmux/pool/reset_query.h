// A pooled driver's connection-reset query, answered by pgmux itself in transaction and statement
// mode. asyncpg sends "SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;" every
// time its pool takes a connection back: forwarded, that is a server transaction per request that
// changes nothing the client can see. A client between transactions holds no server, so it has
// no cursor, LISTEN or session advisory lock of its own anywhere; its tracked parameters are kept
// by pgmux, and RESET ALL leaves them as they are when the client never changed one.
#pragma once

#include <string>
#include <string_view>

namespace pgmux::pool {

// When `sql` is one or more of the statements above (any order, `;`-separated, any case and
// whitespace, nothing else), appends to `out` the reply PostgreSQL gives, ReadyForQuery 'I'
// included, and returns true. `paramsAtDefaults` says whether RESET ALL would leave every tracked
// parameter of the client as it is; without it a RESET ALL is not answered. Otherwise returns
// false and leaves `out` unchanged.
bool answerResetQuery(std::string_view sql, bool paramsAtDefaults, std::string& out);

}  // namespace pgmux::pool
