-- wrk script: POST the form body $BODY (already form-encoded) to the URL's path, with
-- $AUTHORIZATION as the Authorization header value and, when set, $COOKIE as the Cookie.

function init(args)
   wrk.method = "POST"
   wrk.body = os.getenv("BODY")
   wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
   wrk.headers["Authorization"] = os.getenv("AUTHORIZATION")
   local cookie = os.getenv("COOKIE")
   if cookie and cookie ~= "" then
      wrk.headers["Cookie"] = cookie
   end
end
