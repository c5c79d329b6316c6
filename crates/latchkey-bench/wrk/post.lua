-- wrk: POST a JSON body with a bearer token.
-- Usage: wrk ... -s post.lua URL -- <token> <json-body>
function init(args)
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer " .. args[1]
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = args[2]
end
