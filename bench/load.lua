-- wrk script for bench/load: one scenario per run, chosen by SCENARIO.
--
--   healthz  GET /healthz, no credential (the baseline)
--   verify   GET /auth/verify with the keys of CREDENTIALS in turn (X-Api-Key)
--   verify_scope  the same with ?scope=reports:read (a scope the keys hold)
--   jwt      GET /auth/verify with the tokens of CREDENTIALS in turn
--   graphql  POST /graphql { apiKeys { … } } with the tokens in turn
--   list     GET /auth/api-keys with the tokens in turn
--   create   POST /auth/api-keys with the tokens in turn
--
-- Every request is built once, in init, so the load generator spends its
-- time sending rather than formatting. done prints one RESULT line that
-- bench/load reads.

local scenario = os.getenv("SCENARIO") or "healthz"
local requests = {}
local n, i = 0, 0

local function lines(path)
	local out = {}
	for line in io.lines(path) do
		if line ~= "" then
			out[#out + 1] = line
		end
	end
	return out
end

local gql = '{"query":"{ apiKeys { id keyPrefix name createdAt lastUsedAt expiresAt } }"}'

function init(args)
	local creds = {}
	if scenario ~= "healthz" then
		creds = lines(os.getenv("CREDENTIALS"))
	end
	local function add(method, path, headers, body)
		requests[#requests + 1] = wrk.format(method, path, headers, body)
	end
	if scenario == "healthz" then
		add("GET", "/healthz", {})
	end
	for _, c in ipairs(creds) do
		if scenario == "verify" then
			add("GET", "/auth/verify", { ["X-Api-Key"] = c })
		elseif scenario == "verify_scope" then
			add("GET", "/auth/verify?scope=reports:read", { ["X-Api-Key"] = c })
		elseif scenario == "jwt" then
			add("GET", "/auth/verify", { ["Authorization"] = "Bearer " .. c })
		elseif scenario == "graphql" then
			add("POST", "/graphql", { ["Authorization"] = "Bearer " .. c, ["Content-Type"] = "application/json" }, gql)
		elseif scenario == "list" then
			add("GET", "/auth/api-keys", { ["Authorization"] = "Bearer " .. c })
		elseif scenario == "create" then
			add("POST", "/auth/api-keys", { ["Authorization"] = "Bearer " .. c, ["Content-Type"] = "application/json" },
				'{"name":"bench"}')
		end
	end
	n = #requests
	if n == 0 then
		error("no requests for scenario " .. scenario)
	end
end

function request()
	i = i % n + 1
	return requests[i]
end

function done(summary, latency, reqs)
	local e = summary.errors
	io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d socket_errors=%d\n",
		summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
		e.status, e.connect + e.read + e.write + e.timeout))
end
