-- SPDX-License-Identifier: Apache-2.0
-- users: a JSON document in a string on legacy becomes a hash on target, with the
-- schema version in the field _v ("2"); and back, for a rollback.
--   legacy  user:1 = '{"name":"ann","age":31}'
--   target  user:1 = {name=ann, age=31, _v=2}
-- Nested values are kept as JSON text in their field; JSON null fields are dropped.
-- Keys that are not JSON objects are copied as they are.
-- Spec: transform: {script: /etc/switchyard/users_json_to_hash.lua}, version_field: _v
local json = switchyard.json
local VERSION = "2"
local NULL = json.null

local function text(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then return v .. "" end -- as tostring, without its metatable look-ups
  if t == "table" then return json.encode(v) end
  return tostring(v)
end

local function to_hash(doc)
  local h = {_v = VERSION}
  for f, v in pairs(doc) do
    if v ~= NULL then h[f] = text(v) end
  end
  return h
end

local function decode_object(s)
  local ok, doc = pcall(json.decode, s)
  if ok and type(doc) == "table" then return doc end
  return nil
end

function forward_key(k)
  if k.type == "none" then return {{key = k.key, type = "none"}} end
  local doc = k.type == "string" and decode_object(k.value)
  if not doc then return {k} end
  return {{key = k.key, type = "hash", value = to_hash(doc), ttl_ms = k.ttl_ms}}
end

-- The fast path: the writes that keep their meaning on a hash, and SET of a document.
-- Anything else (SETEX, RENAME, APPEND, ...) returns nil: the agent copies the keys
-- the write touched through forward_key, which is always right.
local SAME = {DEL = true, UNLINK = true, EXPIRE = true, PEXPIRE = true, EXPIREAT = true,
              PEXPIREAT = true, PERSIST = true}

function forward_write(argv)
  local cmd = argv[1]
  if cmd ~= "SET" then cmd = cmd:upper() end -- clients mostly send it upper case
  if SAME[cmd] then return {argv} end
  if cmd == "SET" and #argv == 3 then
    local doc = decode_object(argv[3])
    if not doc then return nil end
    -- the fields of to_hash(doc), straight into the command
    local hset, n = {"HSET", argv[2], "_v", VERSION}, 4
    for f, v in pairs(doc) do
      if v ~= NULL then -- a document's own _v comes later and wins, as in to_hash
        hset[n + 1] = f
        hset[n + 2] = text(v)
        n = n + 2
      end
    end
    return {{"DEL", argv[2]}, hset}
  end
  return nil
end

function reverse_key(k)
  if k.type == "none" then return {{key = k.key, type = "none"}} end
  if k.type ~= "hash" or k.value._v == nil then return {k} end
  local doc = {}
  for f, v in pairs(k.value) do
    if f ~= "_v" then
      -- whole numbers were numbers in the document
      doc[f] = (v:match("^%-?%d+$") and math.tointeger(tonumber(v))) or v
    end
  end
  return {{key = k.key, value = json.encode(doc), ttl_ms = k.ttl_ms}}
end

-- reverse_write is not defined: a write on target is copied back through reverse_key.
