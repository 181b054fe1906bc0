-- wrk script for bench/run.py: headers and body from the environment, a unique
-- Idempotency-Key per request when asked, and one machine-readable result line.
--
--   BENCH_METHOD        GET (default) or POST
--   BENCH_BODY          request body (POST)
--   BENCH_TOKEN         bearer token for the Authorization header
--   BENCH_USER_ID       sent as X-User-Id (the raw app's no-JWT route)
--   BENCH_TOKEN_VERSION sent as X-Token-Version (the same route)
--   BENCH_KEY_PREFIX    when set, every request carries
--                       Idempotency-Key: <prefix>-<thread>-<counter>
--   BENCH_PRODUCTS      comma-separated product ids: each POST body is built
--                       from 3 distinct ones drawn at random (instead of BENCH_BODY)

local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
local token = os.getenv("BENCH_TOKEN")
local user_id = os.getenv("BENCH_USER_ID")
local token_version = os.getenv("BENCH_TOKEN_VERSION")
local key_prefix = os.getenv("BENCH_KEY_PREFIX")
local products = {}
for id in string.gmatch(os.getenv("BENCH_PRODUCTS") or "", "[^,]+") do
  table.insert(products, id)
end

local base_headers = {}
if token and token ~= "" then
  base_headers["Authorization"] = "Bearer " .. token
end
if user_id and user_id ~= "" then
  base_headers["X-User-Id"] = user_id
end
if token_version and token_version ~= "" then
  base_headers["X-Token-Version"] = token_version
end
if (body and body ~= "") or #products > 0 then
  base_headers["Content-Type"] = "application/json"
else
  body = nil
end

local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_id", thread_count)
end

local counter = 0
local fixed_request = nil

local function random_body()
  local picked, seen = {}, {}
  while #picked < 3 do
    local id = products[math.random(#products)]
    if not seen[id] then
      seen[id] = true
      table.insert(picked, '{"product_id":"' .. id .. '","quantity":1}')
    end
  end
  return '{"lines":[' .. table.concat(picked, ",") .. "]}"
end

function init(args)
  math.randomseed(os.time() + thread_id)
  if (not key_prefix or key_prefix == "") and #products == 0 then
    fixed_request = wrk.format(method, nil, base_headers, body)
  end
end

function request()
  if fixed_request then
    return fixed_request
  end
  counter = counter + 1
  local headers = {}
  for name, value in pairs(base_headers) do
    headers[name] = value
  end
  if key_prefix and key_prefix ~= "" then
    headers["Idempotency-Key"] = key_prefix .. "-" .. thread_id .. "-" .. counter
  end
  if #products > 0 then
    return wrk.format(method, nil, headers, random_body())
  end
  return wrk.format(method, nil, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean
  ))
end
