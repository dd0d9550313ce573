-- wrk script: complete sign-ins of browsers that are signed in and whose user consented
-- before: GET /authorize answers a redirect with a code at once, and the code is then
-- exchanged at POST /token. Two requests make one sign-in.
--   $COOKIES       a file of Cookie header values, one browser a line, taken in turn
--   $QUERY         the authorization request's query (PKCE S256)
--   $TOKEN_BODY    the code exchange's form body, without the code
--   $AUTHORIZATION the client's credentials

local count = 0

function setup(thread)
   count = count + 1
   thread:set("id", count)
end

function init(args)
   cookies = {}
   for line in io.lines(os.getenv("COOKIES")) do
      table.insert(cookies, line)
   end
   turn = id
   codes = {}
   query = "/authorize?" .. os.getenv("QUERY")
   token_body = os.getenv("TOKEN_BODY")
   token_headers = {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Authorization"] = os.getenv("AUTHORIZATION"),
   }
end

function request()
   local code = table.remove(codes, 1)
   if code then
      return wrk.format("POST", "/token", token_headers, token_body .. "&code=" .. code)
   end
   turn = turn % #cookies + 1
   return wrk.format("GET", query, { ["Cookie"] = cookies[turn] })
end

function response(status, headers, body)
   if status == 303 then
      local location = headers["Location"] or headers["location"] or ""
      local code = location:match("[?&]code=([^&]+)")
      if code then
         table.insert(codes, code)
      end
   end
end
