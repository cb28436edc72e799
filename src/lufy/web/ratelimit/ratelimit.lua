-- Rate limit check for every policy that applies to one request, atomically.
--
-- A request policy ('r') is a sliding window: its key is a sorted set of the request ids
-- admitted in the last `window`, scored by the Redis server's clock in microseconds (one clock
-- for every API process). A byte policy ('b', a budget of body bytes) is a token bucket: its
-- key is a hash {tokens, ts} holding `limit` bytes at most, refilled at `limit` per `window`.
-- A request is admitted only if every policy has room (a bucket: at least the request's cost);
-- then it is recorded under every key, so a refused request costs the caller nothing and the
-- limits stay exact under any concurrency.
--
-- KEYS[i]                  the key of policy i
-- ARGV[1]                  a unique id for this request (the member added)
-- ARGV[2]                  the request's cost in bytes (used by byte policies only)
-- ARGV[3]                  "1" to record the request when admitted, "0" to only look
-- ARGV[1 + 3i], ARGV[2 + 3i], ARGV[3 + 3i]  limit, window in milliseconds and kind of policy i
--
-- Returns {admitted (1|0), remaining_1, reset_us_1, remaining_2, reset_us_2, ...} where
-- reset_us is how long until the policy frees its next unit (0 when its window is empty; for a
-- bucket, until it is full again). A bucket that cannot hold this request reports 0 remaining
-- and how long until it can.

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local cost = tonumber(ARGV[2])
local record = ARGV[3] == '1'
local n = #KEYS
local counts = {}
local tokens = {}
local admitted = 1

for i = 1, n do
  local limit = tonumber(ARGV[1 + 3 * i])
  local window = tonumber(ARGV[2 + 3 * i]) * 1000
  if ARGV[3 + 3 * i] == 'b' then
    local state = redis.call('HMGET', KEYS[i], 'tokens', 'ts')
    local left = tonumber(state[1])
    if left == nil then
      left = limit
    else
      left = left + (now - tonumber(state[2])) * limit / window
      if left > limit then
        left = limit
      end
    end
    tokens[i] = left
    if left < cost then
      admitted = 0
    end
  else
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
    local count = redis.call('ZCARD', KEYS[i])
    counts[i] = count
    if count >= limit then
      admitted = 0
    end
  end
end

local result = {admitted}
for i = 1, n do
  local limit = tonumber(ARGV[1 + 3 * i])
  local window_ms = tonumber(ARGV[2 + 3 * i])
  local window = window_ms * 1000
  if ARGV[3 + 3 * i] == 'b' then
    local left = tokens[i]
    local remaining = 0
    local reset = 0
    if admitted == 1 and record then
      left = left - cost
      redis.call('HSET', KEYS[i], 'tokens', tostring(left), 'ts', tostring(now))
      redis.call('PEXPIRE', KEYS[i], window_ms + 1)
    end
    if admitted == 0 and left < cost then
      reset = math.ceil((cost - left) * window / limit)
    else
      remaining = math.floor(left)
      reset = math.ceil((limit - left) * window / limit)
    end
    result[#result + 1] = remaining
    result[#result + 1] = reset
  else
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
end
return result
