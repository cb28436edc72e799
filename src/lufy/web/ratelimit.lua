-- Sliding-window rate limit check for every policy that applies to one request, atomically.
--
-- Each key is a sorted set of the request ids admitted in the last `window`, scored by the
-- Redis server's clock in microseconds (one clock for every API process). A request is admitted
-- only if every policy has room; then it is recorded under every key, so a refused request
-- costs the caller nothing and the limits stay exact under any concurrency.
--
-- KEYS[i]                  the sorted set of policy i
-- ARGV[1]                  a unique id for this request (the member added)
-- ARGV[2]                  "1" to record the request when admitted, "0" to only look
-- ARGV[1 + 2i], ARGV[2 + 2i]  limit and window in milliseconds of policy i
--
-- Returns {admitted (1|0), remaining_1, reset_us_1, remaining_2, reset_us_2, ...} where
-- reset_us is how long until the policy frees its next unit (0 when its window is empty).

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local record = ARGV[2] == '1'
local n = #KEYS
local counts = {}
local admitted = 1

for i = 1, n do
  local limit = tonumber(ARGV[1 + 2 * i])
  local window = tonumber(ARGV[2 + 2 * i]) * 1000
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local count = redis.call('ZCARD', KEYS[i])
  counts[i] = count
  if count >= limit then
    admitted = 0
  end
end

local result = {admitted}
for i = 1, n do
  local limit = tonumber(ARGV[1 + 2 * i])
  local window_ms = tonumber(ARGV[2 + 2 * i])
  local window = window_ms * 1000
  local count = counts[i]
  if admitted == 1 and record then
    redis.call('ZADD', KEYS[i], now, ARGV[1])
    redis.call('PEXPIRE', KEYS[i], window_ms + 1)
    count = count + 1
  end
  local remaining = limit - count
  if remaining < 0 then
    remaining = 0
  end
  local reset = 0
  if count > 0 then
    -- The entry whose expiry brings the count below the limit (the oldest while there is room).
    local index = 0
    if count >= limit then
      index = count - limit
    end
    local entry = redis.call('ZRANGE', KEYS[i], index, index, 'WITHSCORES')
    reset = tonumber(entry[2]) + window - now
    if reset < 0 then
      reset = 0
    end
  end
  result[#result + 1] = remaining
  result[#result + 1] = reset
end
return result
