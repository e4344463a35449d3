-- wrk script of `cargo xtask bench` (xtask/src/load.rs): POSTs the bodies of WRK_BODIES (one
-- per line) in turn, with the content type WRK_CONTENT_TYPE, and counts every answer that is
-- not a 200. With as many bodies as connections, the requests in flight at any moment all
-- carry different bodies (each connection sends its next request when its previous one is
-- answered, and the last N taken in turn are N different ones).
-- done() prints one line the benchmark parses:
--   WRK_RESULT requests=N non200=N errors=N first_non200=<status> <body…>
wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("WRK_CONTENT_TYPE")

local bodies = {}
for line in string.gmatch(os.getenv("WRK_BODIES") or "", "[^\n]+") do
  table.insert(bodies, line)
end
local next_body = 0

function request()
  next_body = next_body % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[next_body])
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

non200 = 0
first_non200 = ""

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
    if first_non200 == "" then
      first_non200 = tostring(status) .. " " .. string.sub(body or "", 1, 300)
    end
  end
end

function done(summary, latency, requests)
  local bad, first = 0, ""
  for _, t in ipairs(threads) do
    bad = bad + t:get("non200")
    if first == "" then
      first = t:get("first_non200")
    end
  end
  local e = summary.errors
  io.write(string.format("WRK_RESULT requests=%d non200=%d errors=%d first_non200=%s\n",
    summary.requests, bad, e.connect + e.read + e.write + e.timeout, string.gsub(first, "\n", " ")))
end
