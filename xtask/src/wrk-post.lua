-- wrk script of `cargo xtask bench` (xtask/src/load.rs): replays one POST, whose body and
-- content type come from the environment, and counts every answer that is not a 200.
-- done() prints one line the benchmark parses:
--   WRK_RESULT requests=N non200=N errors=N first_non200=<status> <body…>
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY")
wrk.headers["Content-Type"] = os.getenv("WRK_CONTENT_TYPE")

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
