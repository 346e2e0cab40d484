-- bench/entries.lua - wrk script of the `http` scenario: GET /entries/<random id in 1..10000>.
-- Each wrk thread has its own Lua state; the address of a fresh table tells them apart, so the
-- two threads do not request the same sequence of ids.
local seeded = false

request = function()
  if not seeded then
    math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
    seeded = true
  end
  return wrk.format("GET", "/entries/" .. math.random(1, 10000))
end
