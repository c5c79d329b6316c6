-- wrk: GET the path with a different token on each request, from a file of secrets
-- (one per line). Usage: wrk -t T ... -s rotate.lua URL -- <secrets-file> T
-- Thread k of T starts at k/T of the list, so that T threads making as many requests as
-- there are secrets between them use every secret.
local secrets = {}
local next_index = 1
local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do
    secrets[#secrets + 1] = line
  end
  local count = tonumber(args[2] or "2")
  next_index = 1 + math.floor(thread_index * #secrets / count)
end

function request()
  local secret = secrets[next_index]
  next_index = next_index % #secrets + 1
  return wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. secret })
end
