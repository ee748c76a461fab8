-- SPDX-License-Identifier: Apache-2.0
-- A field renamed inside hashes: legacy's "mail" is target's "email". Other fields and
-- other types are copied as they are.
local FROM, TO = "mail", "email"

local function rename(k, from, to)
  if k.type ~= "hash" or k.value[from] == nil then return {k} end
  k.value[to] = k.value[from]
  k.value[from] = nil
  return {k}
end

local function rename_write(argv, from, to)
  local cmd = argv[1]:upper()
  if cmd == "HSET" or cmd == "HMSET" or cmd == "HSETNX" then
    for i = 3, #argv, 2 do
      if argv[i] == from then argv[i] = to end
    end
    return {argv}
  end
  if cmd == "HDEL" or cmd == "HINCRBY" or cmd == "HINCRBYFLOAT" then
    local last = cmd == "HDEL" and #argv or 3
    for i = 3, last do
      if argv[i] == from then argv[i] = to end
    end
    return {argv}
  end
  return nil -- anything else: copy the key through forward_key / reverse_key
end

function forward_key(k)
  if k.type == "none" then return {{key = k.key, type = "none"}} end
  return rename(k, FROM, TO)
end

function forward_write(argv) return rename_write(argv, FROM, TO) end

function reverse_key(k)
  if k.type == "none" then return {{key = k.key, type = "none"}} end
  return rename(k, TO, FROM)
end

function reverse_write(argv) return rename_write(argv, TO, FROM) end
