-- SPDX-License-Identifier: Apache-2.0
-- One key split into two: legacy's hash user:ID {name, email, theme, lang} becomes
-- target's user:ID {name, email} and user:ID:prefs {theme, lang}.
-- Back: writes made on target go to legacy field by field (reverse_write), which is
-- exact. reverse_key sees one part only, so it can rebuild legacy's key only from the
-- profile part when the prefs part is absent; otherwise it fails on purpose: the key
-- is counted as a failed transform and the migration flagged needs-audit, rather than
-- a copy that would drop the other part's fields.
local PREFS = {theme = true, lang = true}

local function parts(id_key, h)
  local profile, prefs, np = {}, {}, 0
  for f, v in pairs(h) do
    if PREFS[f] then prefs[f] = v; np = np + 1 else profile[f] = v end
  end
  return profile, prefs, np
end

function forward_key(k)
  local prefs_key = k.key .. ":prefs"
  if k.type == "none" then
    return {{key = k.key, type = "none"}, {key = prefs_key, type = "none"}}
  end
  if k.type ~= "hash" then return {k} end
  local profile, prefs, np = parts(k.key, k.value)
  local out = {{key = k.key, type = "hash", value = profile, ttl_ms = k.ttl_ms}}
  if np > 0 then
    out[2] = {key = prefs_key, type = "hash", value = prefs, ttl_ms = k.ttl_ms}
  else
    out[2] = {key = prefs_key, type = "none"}
  end
  return out
end

function forward_write(argv)
  local cmd = argv[1]:upper()
  if cmd == "DEL" or cmd == "UNLINK" then
    local out = {}
    for i = 2, #argv do out[#out + 1] = {"DEL", argv[i], argv[i] .. ":prefs"} end
    return out
  end
  if cmd == "HSET" or cmd == "HMSET" then
    local a, b = {"HSET", argv[2]}, {"HSET", argv[2] .. ":prefs"}
    for i = 3, #argv - 1, 2 do
      local t = PREFS[argv[i]] and b or a
      t[#t + 1] = argv[i]
      t[#t + 1] = argv[i + 1]
    end
    local out = {}
    if #a > 2 then out[#out + 1] = a end
    if #b > 2 then out[#out + 1] = b end
    return out
  end
  return nil
end

local function legacy_name(key)
  local base = key:match("^(.*):prefs$")
  return base or key, base ~= nil
end

function reverse_write(argv)
  local cmd = argv[1]:upper()
  if cmd == "HSET" or cmd == "HMSET" or cmd == "HDEL" then
    local base = legacy_name(argv[2])
    local out = {cmd, base}
    for i = 3, #argv do out[#out + 1] = argv[i] end
    return {out}
  end
  return nil
end

function reverse_key(k)
  local base, is_prefs = legacy_name(k.key)
  if k.type == "none" and not is_prefs then return {{key = base, type = "none"}} end
  error("user:ID is split in two on target: " .. k.key .. " alone cannot rebuild " .. base)
end
