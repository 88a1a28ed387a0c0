-- Takes one token from the bucket KEYS[1] at Redis's time: the generic cell
-- rate algorithm of apikeyd's package gcra (see gcra.State.Take, whose steps
-- these are), in microseconds.
--
-- ARGV: the rate's limit, its period, and the emission interval
-- period/limit as whole microseconds and a remainder in limit-ths of one
-- (computed by the caller in integers).
-- The bucket is a hash: t, the theoretical arrival time (TAT) in
-- microseconds since the epoch, plus f limit-ths of one; l, the limit f is
-- counted in. It expires once the bucket is full again.
-- Returns {allowed (1 or 0), TAT with this request minus now, its f}.
--
-- Every number stays an integer below 2^53, exact in Lua's doubles: times
-- are about 2^51 microseconds, the rest far less.
local limit, period = tonumber(ARGV[1]), tonumber(ARGV[2])
local step, rem = tonumber(ARGV[3]), tonumber(ARGV[4])

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])

local state = redis.call('HMGET', KEYS[1], 't', 'f', 'l')
local tat, frac = tonumber(state[1]) or 0, tonumber(state[2]) or 0
if frac > 0 and tonumber(state[3]) ~= limit then
	-- The remainder was counted in another rate's units: round up.
	tat, frac = tat + 1, 0
end
if tat < now then
	tat, frac = now, 0
end

local nxt, nextFrac = tat + step, frac + rem
if nextFrac >= limit then
	nxt, nextFrac = nxt + 1, nextFrac - limit
end
local ahead = nxt - now
if ahead > period or (ahead == period and nextFrac > 0) then
	return {0, ahead, nextFrac}
end

redis.call('HSET', KEYS[1], 't', string.format('%.0f', nxt), 'f', nextFrac, 'l', limit)
-- Full again after ahead microseconds (and a fraction): then it may go.
redis.call('PEXPIRE', KEYS[1], math.floor(ahead / 1000) + 1)
return {1, ahead, nextFrac}
