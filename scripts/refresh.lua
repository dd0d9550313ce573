-- wrk script: refresh-token rotation chains at POST /token. $REFRESH_TOKENS names a
-- file of refresh tokens, one a line, at least as many as connections plus threads (wrk
-- asks the first thread for one request before the run, to check the script, and that
-- token is never sent); thread $id of $THREADS takes every $THREADS-th. Each request presents a token no other request is
-- presenting, and the answer's new refresh token goes back into the thread's pool, so
-- every chain rotates without a reuse. $AUTHORIZATION authenticates the client.

local count = 0

function setup(thread)
   count = count + 1
   thread:set("id", count)
end

function init(args)
   local threads = tonumber(os.getenv("THREADS"))
   pool = {}
   local i = 0
   for line in io.lines(os.getenv("REFRESH_TOKENS")) do
      if i % threads == id - 1 then
         table.insert(pool, line)
      end
      i = i + 1
   end
   headers = {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Authorization"] = os.getenv("AUTHORIZATION"),
   }
end

function request()
   local token = table.remove(pool, 1) or "exhausted"
   return wrk.format("POST", nil, headers, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
   local token = body:match('"refresh_token":"([^"]+)"')
   if token then
      table.insert(pool, token)
   end
end
