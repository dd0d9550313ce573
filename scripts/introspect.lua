-- wrk script: POST /introspect with client_secret_basic, cycling through the tokens in
-- the file named by $TOKENS (one per line, base64url/JWT characters only, so they need
-- no form encoding). $AUTHORIZATION is the Authorization header value.
--
-- Every wrk thread is its own Lua state: each reads the file itself and starts at its
-- own offset, so two threads do not walk the list in step.

local threads = 0

function setup(thread)
   thread:set("id", threads)
   threads = threads + 1
end

function init(args)
   wrk.method = "POST"
   wrk.path = "/introspect"
   wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
   wrk.headers["Authorization"] = os.getenv("AUTHORIZATION")
   requests = {}
   for line in io.lines(os.getenv("TOKENS")) do
      if line ~= "" then
         requests[#requests + 1] = wrk.format(nil, nil, nil, "token=" .. line)
      end
   end
   count = #requests
   if count == 0 then
      error("no tokens in " .. os.getenv("TOKENS"))
   end
   next_index = ((id or 0) * 7919) % count
end

function request()
   next_index = next_index % count + 1
   return requests[next_index]
end
